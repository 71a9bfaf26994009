//! The languages of the popup pages: which locale a page uses and its texts.
//!
//! The texts live in `crates/countersign/locales/<locale>.toml`, compiled
//! into the binary. A page's locale comes from the host application when it
//! names one (the `locale` query parameter of `/popup/start/{id}`), else from
//! the browser's `Accept-Language` header, else it is English.

mod catalog;
mod negotiate;

pub use catalog::{duration_text, format_text, text};
pub use negotiate::{PageLocale, from_accept_language, from_host, negotiate};

/// A language that the popup pages are translated into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Locale {
    En,
    De,
    Fr,
    Es,
}

impl Locale {
    /// Every supported locale, English (the fallback) first.
    pub const ALL: [Locale; 4] = [Locale::En, Locale::De, Locale::Fr, Locale::Es];

    /// The locale of a page when neither the host nor the browser names a
    /// supported one.
    pub const DEFAULT: Locale = Locale::En;

    /// Returns the BCP 47 language tag, as used in `<html lang>` and in the
    /// IdP's `ui_locales`.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
            Locale::Fr => "fr",
            Locale::Es => "es",
        }
    }

    /// Matches a BCP 47 language tag by its primary language subtag, so
    /// `de-AT` and `de-CH` give German. Returns `None` for a malformed tag
    /// or a language without a translation. `_` is accepted in place of
    /// `-`, because some platforms write `de_AT`.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let tag = tag.trim();
        if tag.is_empty() || tag.len() > MAX_TAG_LENGTH {
            return None;
        }
        let mut subtags = tag.split(['-', '_']);
        let primary = subtags.next()?;
        let well_formed = (2..=3).contains(&primary.len())
            && primary.chars().all(|c| c.is_ascii_alphabetic())
            && subtags.all(|subtag| {
                (1..=8).contains(&subtag.len()) && subtag.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !well_formed {
            return None;
        }
        Locale::ALL
            .into_iter()
            .find(|locale| primary.eq_ignore_ascii_case(locale.as_str()))
    }
}

impl std::fmt::Display for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maximum length of a language tag, in bytes. A longer value is ignored.
const MAX_TAG_LENGTH: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_matches_primary_subtag() {
        let cases = [
            ("en", Some(Locale::En)),
            ("EN-gb", Some(Locale::En)),
            ("de", Some(Locale::De)),
            ("de-AT", Some(Locale::De)),
            ("de_CH", Some(Locale::De)),
            ("fr-CA", Some(Locale::Fr)),
            ("es-419", Some(Locale::Es)),
            ("zh-Hant-TW", None),
            ("it", None),
            ("", None),
            ("d", None),
            ("deu", None),
            ("de-", None),
            ("de--AT", None),
            ("de-AT-toolongsubtag", None),
            ("d3", None),
            ("de;q=1", None),
            ("*", None),
        ];

        for (tag, expected) in cases {
            assert_eq!(Locale::from_tag(tag), expected, "tag {tag:?}");
        }
    }
}
