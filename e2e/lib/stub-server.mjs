// A throwaway HTTP server on 127.0.0.1 that returns 200 for every request.
// Tests point registered redirect URIs at it when the real application does
// not run, then read `code` or `error` from the browser's URL.
import http from "node:http";

/** Starts the stub on `port` and returns `{ url, requests, close }`. */
export async function startStubServer(port) {
  const requests = [];
  const server = http.createServer((request, response) => {
    requests.push({ method: request.method, url: request.url });
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end("<!doctype html><title>stub</title><p>stubbed redirect target</p>");
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port }, resolve);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
