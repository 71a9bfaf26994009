//! The translated texts, read from `crates/countersign/locales/*.toml`.
//!
//! A key is the TOML path of a text, for example `decision.title` or
//! `error.not_found.message`. A key missing from a locale falls back to the
//! English text; the unit tests below fail when any locale lacks a key.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::Locale;

const SOURCES: [(Locale, &str); 4] = [
    (Locale::En, include_str!("../../locales/en.toml")),
    (Locale::De, include_str!("../../locales/de.toml")),
    (Locale::Fr, include_str!("../../locales/fr.toml")),
    (Locale::Es, include_str!("../../locales/es.toml")),
];

type Catalog = BTreeMap<String, String>;

static CATALOGS: LazyLock<Vec<(Locale, Catalog)>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(locale, source)| {
            let catalog = parse(source).unwrap_or_else(|error| {
                // The tests parse every file, so this happens only when a
                // file was edited without running them.
                tracing::error!(locale = %locale, error = %error, "failed to parse the locale file; using the English texts");
                Catalog::new()
            });
            (*locale, catalog)
        })
        .collect()
});

/// Parses a locale file into a map from dotted key to text.
fn parse(source: &str) -> Result<Catalog, String> {
    let table: toml::Table = toml::from_str(source).map_err(|error| error.to_string())?;
    let mut catalog = Catalog::new();
    flatten("", &table, &mut catalog)?;
    Ok(catalog)
}

fn flatten(prefix: &str, table: &toml::Table, catalog: &mut Catalog) -> Result<(), String> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(text) => {
                catalog.insert(key, text.clone());
            }
            toml::Value::Table(inner) => flatten(&key, inner, catalog)?,
            other => {
                return Err(format!(
                    "`{key}` is a {}, expected a string",
                    other.type_str()
                ));
            }
        }
    }
    Ok(())
}

fn catalog(locale: Locale) -> Option<&'static Catalog> {
    CATALOGS
        .iter()
        .find(|(candidate, _)| *candidate == locale)
        .map(|(_, catalog)| catalog)
}

/// Returns the text of `key` in `locale`, else in English, else the key
/// itself, so that a missing text shows up on the page instead of failing it.
pub fn text(locale: Locale, key: &str) -> &str {
    [locale, Locale::DEFAULT]
        .into_iter()
        .filter_map(catalog)
        .find_map(|catalog| catalog.get(key))
        .map_or(key, String::as_str)
}

/// Returns the text of `key` with each `{name}` replaced by its value.
/// Values are inserted as they are; the templates escape the result.
pub fn format_text(locale: Locale, key: &str, values: &[(&str, &str)]) -> String {
    let mut result = text(locale, key).to_owned();
    for (name, value) in values {
        result = result.replace(&format!("{{{name}}}"), value);
    }
    result
}

/// Spells out a duration in minutes and seconds, for example
/// "4 minutes and 32 seconds" or "4 Minuten und 32 Sekunden". A negative
/// duration reads as zero seconds.
pub fn duration_text(locale: Locale, seconds: i64) -> String {
    let seconds = seconds.max(0);
    let minutes_part = || count_text(locale, "duration.minutes", seconds / 60);
    let seconds_part = || count_text(locale, "duration.seconds", seconds % 60);
    match (seconds / 60, seconds % 60) {
        (0, _) => seconds_part(),
        (_, 0) => minutes_part(),
        _ => format_text(
            locale,
            "duration.minutes_and_seconds",
            &[("minutes", &minutes_part()), ("seconds", &seconds_part())],
        ),
    }
}

/// Returns `{key}_one` or `{key}_other` with the count filled in.
fn count_text(locale: Locale, key: &str, count: i64) -> String {
    let form = if is_singular(locale, count) {
        "one"
    } else {
        "other"
    };
    format_text(
        locale,
        &format!("{key}_{form}"),
        &[("count", &count.to_string())],
    )
}

/// Returns whether `count` takes the singular form. By the CLDR plural
/// rules for whole numbers, French uses it for 0 and 1, and English, German
/// and Spanish for 1 only.
fn is_singular(locale: Locale, count: i64) -> bool {
    match locale {
        Locale::Fr => count == 0 || count == 1,
        Locale::En | Locale::De | Locale::Es => count == 1,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn parsed(locale: Locale) -> Catalog {
        let (_, source) = SOURCES
            .iter()
            .find(|(candidate, _)| *candidate == locale)
            .unwrap();
        parse(source).unwrap_or_else(|error| panic!("{locale}.toml: {error}"))
    }

    /// Returns the `{name}` placeholders of a text.
    fn placeholders(text: &str) -> BTreeSet<String> {
        text.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}'))
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    #[test]
    fn every_locale_file_parses() {
        for locale in Locale::ALL {
            assert!(!parsed(locale).is_empty(), "{locale}.toml has no texts");
        }
    }

    #[test]
    fn every_key_exists_in_every_locale() {
        let english: BTreeSet<String> = parsed(Locale::En).into_keys().collect();
        for locale in Locale::ALL {
            let keys: BTreeSet<String> = parsed(locale).into_keys().collect();
            let missing: Vec<&String> = english.difference(&keys).collect();
            let extra: Vec<&String> = keys.difference(&english).collect();
            assert!(missing.is_empty(), "{locale}.toml lacks {missing:?}");
            assert!(
                extra.is_empty(),
                "{locale}.toml has keys that en.toml lacks: {extra:?}"
            );
        }
    }

    #[test]
    fn translations_keep_placeholders() {
        let english = parsed(Locale::En);
        for locale in Locale::ALL {
            for (key, text) in parsed(locale) {
                assert!(!text.trim().is_empty(), "{locale}.toml: `{key}` is empty");
                let expected = placeholders(&english[&key]);
                assert_eq!(
                    placeholders(&text),
                    expected,
                    "{locale}.toml: placeholders of `{key}`"
                );
            }
        }
    }

    #[test]
    fn missing_key_falls_back() {
        assert_eq!(text(Locale::De, "decision.approve"), "Genehmigen");
        assert_eq!(text(Locale::De, "no.such.key"), "no.such.key");
        assert_eq!(
            format_text(
                Locale::Fr,
                "result.approved_message",
                &[("approver", "Maria")]
            ),
            "Vous avez approuvé la demande en tant que Maria."
        );
    }

    #[test]
    fn durations_use_plural_forms() {
        let cases = [
            (Locale::En, 272, "4 minutes and 32 seconds"),
            (Locale::En, 61, "1 minute and 1 second"),
            (Locale::En, 120, "2 minutes"),
            (Locale::En, 9, "9 seconds"),
            (Locale::En, 0, "0 seconds"),
            (Locale::En, -3, "0 seconds"),
            (Locale::De, 272, "4 Minuten und 32 Sekunden"),
            (Locale::De, 60, "1 Minute"),
            (Locale::De, 1, "1 Sekunde"),
            (Locale::Fr, 272, "4 minutes et 32 secondes"),
            (Locale::Fr, 0, "0 seconde"),
            (Locale::Fr, 61, "1 minute et 1 seconde"),
            (Locale::Es, 272, "4 minutos y 32 segundos"),
            (Locale::Es, 0, "0 segundos"),
            (Locale::Es, 60, "1 minuto"),
        ];

        for (locale, seconds, expected) in cases {
            assert_eq!(
                duration_text(locale, seconds),
                expected,
                "{locale}, {seconds} s"
            );
        }
    }
}
