//! Choosing the locale of a popup page.

use super::Locale;

/// The locale of a page and whether the host application chose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLocale {
    pub locale: Locale,
    /// True when the locale came from the host's `locale` parameter, which
    /// the popup then keeps for the rest of the attempt and its retries.
    pub from_host: bool,
}

/// Chooses the locale of a page: the host's choice when it names a
/// supported language, else the browser's `Accept-Language`, else English.
pub fn negotiate(host: Option<&str>, accept_language: Option<&str>) -> PageLocale {
    if let Some(locale) = host.and_then(from_host) {
        return PageLocale {
            locale,
            from_host: true,
        };
    }
    let locale = accept_language
        .and_then(from_accept_language)
        .unwrap_or(Locale::DEFAULT);
    PageLocale {
        locale,
        from_host: false,
    }
}

/// Reads the host's `locale` parameter: one BCP 47 tag, or several
/// separated by spaces in order of preference (the form of OpenID Connect's
/// `ui_locales`). Returns the first supported one.
pub fn from_host(value: &str) -> Option<Locale> {
    value.split_whitespace().find_map(Locale::from_tag)
}

/// Picks the supported locale that an `Accept-Language` header (RFC 9110,
/// section 12.5.4) prefers most, or `None` when it names none of them.
///
/// Ranges are tried by falling quality value, and in header order among
/// equal values. A range with `q=0` or with a malformed `q` is skipped. The
/// wildcard `*` stands for the first supported locale, in the order of
/// [`Locale::ALL`], that the header does not exclude with `q=0`.
pub fn from_accept_language(header: &str) -> Option<Locale> {
    let mut ranges: Vec<(&str, u16)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim();
            if range.is_empty() {
                return None;
            }
            let mut quality = MAX_QUALITY;
            for parameter in parts {
                let (name, value) = parameter.split_once('=')?;
                if name.trim().eq_ignore_ascii_case("q") {
                    quality = parse_quality(value.trim())?;
                }
            }
            Some((range, quality))
        })
        .collect();
    // A stable sort keeps the header order among equal quality values.
    ranges.sort_by(|a, b| b.1.cmp(&a.1));

    let excluded: Vec<Locale> = ranges
        .iter()
        .filter(|(_, quality)| *quality == 0)
        .filter_map(|(range, _)| Locale::from_tag(range))
        .collect();
    ranges
        .iter()
        .filter(|(_, quality)| *quality > 0)
        .find_map(|(range, _)| {
            if *range == "*" {
                Locale::ALL
                    .into_iter()
                    .find(|locale| !excluded.contains(locale))
            } else {
                Locale::from_tag(range)
            }
        })
}

/// Quality value 1 in thousandths.
const MAX_QUALITY: u16 = 1000;

/// Parses a quality value in thousandths. RFC 9110, section 12.4.2 allows
/// `0` to `1` with at most three decimals: `0`, `0.`, `0.5`, `0.125`, `1`,
/// `1.000`.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(MAX_QUALITY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_follows_quality_values() {
        let cases = [
            ("de", Some(Locale::De)),
            ("de-AT", Some(Locale::De)),
            ("de-AT,de;q=0.9,en;q=0.8", Some(Locale::De)),
            ("en-US,en;q=0.9,de;q=0.8", Some(Locale::En)),
            ("it,fr;q=0.5,de;q=0.4", Some(Locale::Fr)),
            ("fr;q=0.5, es;q=0.7", Some(Locale::Es)),
            ("es;q=0.7, fr;q=0.7", Some(Locale::Es)),
            ("fr;q=0.700, es;q=0.701", Some(Locale::Es)),
            ("de;q=0, fr", Some(Locale::Fr)),
            ("de;q=0.0, en;q=0.1", Some(Locale::En)),
            ("DE-at ; Q=1.0", Some(Locale::De)),
            ("fr-CA;q=1.", Some(Locale::Fr)),
            ("it, ja;q=0.9", None),
            ("", None),
            (",,;", None),
            ("de;q=0", None),
        ];

        for (header, expected) in cases {
            assert_eq!(from_accept_language(header), expected, "header {header:?}");
        }
    }

    #[test]
    fn malformed_quality_skips_the_range() {
        let cases = [
            ("de;q=2, fr;q=0.1", Some(Locale::Fr)),
            ("de;q=1.5, fr;q=0.1", Some(Locale::Fr)),
            ("de;q=0.1234, fr;q=0.1", Some(Locale::Fr)),
            ("de;q=abc, fr;q=0.1", Some(Locale::Fr)),
            ("de;q=-1, fr;q=0.1", Some(Locale::Fr)),
            ("de;q=, fr;q=0.1", Some(Locale::Fr)),
            ("de;q, fr;q=0.1", Some(Locale::Fr)),
        ];

        for (header, expected) in cases {
            assert_eq!(from_accept_language(header), expected, "header {header:?}");
        }
    }

    #[test]
    fn wildcard_takes_first_locale_not_excluded() {
        assert_eq!(from_accept_language("*"), Some(Locale::En));
        assert_eq!(from_accept_language("it, *;q=0.5"), Some(Locale::En));
        assert_eq!(from_accept_language("en;q=0, *"), Some(Locale::De));
        assert_eq!(
            from_accept_language("en;q=0, de;q=0, *;q=0.1"),
            Some(Locale::Fr)
        );
        assert_eq!(from_accept_language("*;q=0.5, es"), Some(Locale::Es));
    }

    #[test]
    fn quality_values_parse() {
        let cases = [
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.125", Some(125)),
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("1.001", None),
            ("01", None),
            (".5", None),
            ("0.5x", None),
        ];

        for (value, expected) in cases {
            assert_eq!(parse_quality(value), expected, "q={value}");
        }
    }

    #[test]
    fn host_locale_wins_over_browser() {
        assert_eq!(
            negotiate(Some("fr"), Some("de")),
            PageLocale {
                locale: Locale::Fr,
                from_host: true
            }
        );
        assert_eq!(
            negotiate(Some("it fr-CA en"), Some("de")),
            PageLocale {
                locale: Locale::Fr,
                from_host: true
            }
        );
    }

    #[test]
    fn unknown_locale_falls_back_to_english() {
        assert_eq!(
            negotiate(Some("it"), Some("de;q=0.5")),
            PageLocale {
                locale: Locale::De,
                from_host: false
            }
        );
        assert_eq!(
            negotiate(Some("not a tag!"), Some("ja, zh")),
            PageLocale {
                locale: Locale::En,
                from_host: false
            }
        );
        assert_eq!(
            negotiate(None, None),
            PageLocale {
                locale: Locale::En,
                from_host: false
            }
        );
        assert_eq!(negotiate(Some(""), Some("es-MX")).locale, Locale::Es);
    }
}
