// The till: sign-in for the cashier, then the orders with a refund button each.
import { currentCashier } from "@/lib/auth";
import { countersignOrigin } from "@/lib/config";
import { ORDERS } from "@/lib/orders";
import { findRefund } from "@/lib/store";

import { SignInButton, SignOutButton } from "./auth-buttons";
import { RefundButton } from "./refund-button";

// The page depends on the session and on the in-memory refunds.
export const dynamic = "force-dynamic";

export default async function Home() {
  const cashier = await currentCashier();

  return (
    <>
      <header>
        <h1>Next.js shop</h1>
        {cashier ? (
          <span>
            Signed in as <span id="signed-in-as">{cashier.name} ({cashier.username ?? cashier.sub})</span>{" "}
            <SignOutButton />
          </span>
        ) : null}
      </header>
      <p className="demo-note">Demo only: refunds are kept in memory, and every credential of this demo is public.</p>

      {cashier ? (
        <table>
          <thead>
            <tr>
              <th>Order</th>
              <th>Items</th>
              <th>Total</th>
              <th>Refund</th>
            </tr>
          </thead>
          <tbody>
            {ORDERS.map((order) => {
              const refund = findRefund(order.id);
              return (
                <tr key={order.id}>
                  <td>{order.id}</td>
                  <td>{order.items.join(", ")}</td>
                  <td>
                    {order.amount} {order.currency}
                  </td>
                  <td>
                    <RefundButton
                      orderId={order.id}
                      countersignOrigin={countersignOrigin()}
                      refundedBy={refund ? refund.approvedBy : null}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : (
        <p>
          Sign in as the cashier to see the orders. <SignInButton />
        </p>
      )}
    </>
  );
}
