//! Character and shape rules of the host API that the approvals service
//! does not check itself. The service checks lengths, blank values and
//! control characters in the text fields, the size of `details` and the
//! origin. These rules add checks for text that could mislead the approver
//! on the decision page or a reader of the log.

use serde_json::{Map, Value};

use super::problem::Problem;
use crate::codes::ErrorCode;

/// Deepest nesting of objects and arrays in `details`, counting `details`
/// itself as level 1. The decision page shows nested values as JSON text.
pub const MAX_DETAILS_DEPTH: usize = 10;

/// Longest `origin` accepted; a real origin is far shorter, and the value
/// is quoted in the error when it is not an origin.
pub const MAX_ORIGIN_CHARS: usize = 2048;

/// Unicode bidirectional formatting characters (Unicode Standard Annex 9):
/// they can make text display in an order other than the stored one, so a
/// summary could show "49.90" while saying "09.94".
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn position_problem(field: &str, c: char, position: usize, what: &str) -> Problem {
    Problem::new(
        ErrorCode::InvalidRequest,
        format!(
            "{field} contains {what} U+{:04X} at character {position}; remove it",
            u32::from(c)
        ),
    )
}

/// Rejects bidirectional formatting characters in a text field.
pub fn check_plain_text(field: &str, text: &str) -> Result<(), Problem> {
    match text.chars().enumerate().find(|(_, c)| is_bidi_control(*c)) {
        Some((position, c)) => Err(position_problem(
            field,
            c,
            position + 1,
            "the bidirectional formatting character",
        )),
        None => Ok(()),
    }
}

/// Rejects an `origin` that is too long or contains a control or
/// formatting character, before the service quotes it in an error.
pub fn check_origin_text(origin: &str) -> Result<(), Problem> {
    if origin.chars().count() > MAX_ORIGIN_CHARS {
        return Err(Problem::new(
            ErrorCode::InvalidRequest,
            format!(
                "origin is longer than {MAX_ORIGIN_CHARS} characters; send scheme, host and port only, like http://localhost:18400"
            ),
        ));
    }
    let found = origin
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() || is_bidi_control(*c));
    match found {
        Some((position, c)) => Err(position_problem(
            "origin",
            c,
            position + 1,
            "the control character",
        )),
        None => Ok(()),
    }
}

/// Checks the nesting depth of `details` and every key and string in it:
/// no control characters except tab and line feed, and no bidirectional
/// formatting characters.
pub fn check_details(details: &Map<String, Value>) -> Result<(), Problem> {
    check_object(details, "details", 1)
}

fn check_object(object: &Map<String, Value>, path: &str, depth: usize) -> Result<(), Problem> {
    for (key, value) in object {
        let field = format!("{path}.{key}");
        check_detail_text(&format!("a key in {path}"), key)?;
        check_value(value, &field, depth)?;
    }
    Ok(())
}

fn check_value(value: &Value, path: &str, depth: usize) -> Result<(), Problem> {
    match value {
        Value::String(text) => check_detail_text(path, text),
        Value::Object(object) => {
            check_depth(path, depth + 1)?;
            check_object(object, path, depth + 1)
        }
        Value::Array(items) => {
            check_depth(path, depth + 1)?;
            for (index, item) in items.iter().enumerate() {
                check_value(item, &format!("{path}[{index}]"), depth + 1)?;
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn check_depth(path: &str, depth: usize) -> Result<(), Problem> {
    if depth > MAX_DETAILS_DEPTH {
        return Err(Problem::new(
            ErrorCode::InvalidRequest,
            format!("{path} is nested deeper than {MAX_DETAILS_DEPTH} levels; flatten details"),
        ));
    }
    Ok(())
}

fn check_detail_text(field: &str, text: &str) -> Result<(), Problem> {
    let found = text
        .chars()
        .enumerate()
        .find(|(_, c)| (c.is_control() && *c != '\n' && *c != '\t') || is_bidi_control(*c));
    match found {
        Some((position, c)) if is_bidi_control(c) => Err(position_problem(
            field,
            c,
            position + 1,
            "the bidirectional formatting character",
        )),
        Some((position, c)) => Err(position_problem(
            field,
            c,
            position + 1,
            "the control character",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    /// Returns `levels` objects nested in each other.
    fn nested(levels: usize) -> Value {
        let mut value = json!("leaf");
        for _ in 0..levels {
            value = json!({ "n": value });
        }
        value
    }

    #[test]
    fn details_at_max_depth_pass() {
        let details = object(nested(MAX_DETAILS_DEPTH));

        assert!(check_details(&details).is_ok());
    }

    #[test]
    fn details_beyond_max_depth_fail() {
        let details = object(nested(MAX_DETAILS_DEPTH + 1));

        let problem = check_details(&details).unwrap_err();

        assert!(
            problem
                .log_message()
                .contains("nested deeper than 10 levels"),
            "{}",
            problem.log_message()
        );
    }

    #[test]
    fn arrays_count_as_levels() {
        let mut value = json!(1);
        for _ in 0..MAX_DETAILS_DEPTH {
            value = json!([value]);
        }
        let details = object(json!({ "list": value }));

        assert!(check_details(&details).is_err());
    }

    #[test]
    fn detail_strings_allow_tab_and_newline_only() {
        assert!(check_details(&object(json!({"note": "a\tb\nc"}))).is_ok());

        let problem = check_details(&object(json!({"note": "a\u{7}b"}))).unwrap_err();
        assert_eq!(
            problem.log_message(),
            "details.note contains the control character U+0007 at character 2; remove it"
        );

        let problem = check_details(&object(json!({"x\u{1b}": "a"}))).unwrap_err();
        assert!(
            problem
                .log_message()
                .starts_with("a key in details contains"),
            "{}",
            problem.log_message()
        );
    }

    #[test]
    fn bidi_controls_are_rejected_everywhere() {
        assert!(check_plain_text("summary", "Refund \u{202E}09.94").is_err());
        assert!(check_plain_text("summary", "Refund 49.90 €").is_ok());
        assert!(check_details(&object(json!({"amount": ["\u{2067}1"]}))).is_err());
        assert!(check_origin_text("http://localhost:18400\u{200F}").is_err());
    }

    #[test]
    fn origin_with_newline_is_rejected() {
        let problem = check_origin_text("http://a\nb").unwrap_err();

        assert_eq!(
            problem.log_message(),
            "origin contains the control character U+000A at character 9; remove it"
        );
    }

    #[test]
    fn overlong_origin_is_rejected() {
        let origin = format!("http://{}", "a".repeat(MAX_ORIGIN_CHARS));

        assert!(check_origin_text(&origin).is_err());
    }
}
