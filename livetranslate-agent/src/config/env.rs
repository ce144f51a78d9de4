//! `${VAR}` and `${VAR:-default}` expansion of the configuration text, before YAML parsing
//! (positions of errors are those of the text as written).

/// An undefined variable in `${VAR}` expansion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ExpandError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Replaces `${VAR}` with the variable's value (an error if unset) and `${VAR:-default}` with
/// the value or, if unset or empty, `default`. `$$` is a literal `$`; any other `$` is kept.
/// YAML comments (`#` at the start of a line or after a blank, outside quotes) are copied
/// unchanged, so they may mention `${VAR}` freely.
pub fn expand_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let cut = comment_start(line);
        expand_line(&line[..cut], i + 1, lookup, &mut out)?;
        out.push_str(&line[cut..]);
    }
    Ok(out)
}

/// Byte offset where a YAML comment starts in `line` (or its length).
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('\'') if c == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                chars.next();
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' && (prev == ' ' || prev == '\t') => return i,
            None if (c == '"' || c == '\'')
                && matches!(prev, ' ' | '\t' | ':' | '[' | '{' | ',' | '-') =>
            {
                quote = Some(c);
            }
            None => {}
        }
        prev = c;
    }
    line.len()
}

fn expand_line(
    line_text: &str,
    line: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ExpandError> {
    let mut col = 1;
    let mut rest = line_text;
    while let Some(pos) = rest.find('$') {
        let (before, at) = rest.split_at(pos);
        out.push_str(before);
        col += before.chars().count();
        if let Some(after) = at.strip_prefix("$$") {
            out.push('$');
            col += 2;
            rest = after;
            continue;
        }
        let Some(body) = at.strip_prefix("${") else {
            out.push('$');
            col += 1;
            rest = &at[1..];
            continue;
        };
        let err = |message: String| ExpandError {
            line,
            column: col,
            message,
        };
        let end = body
            .find('}')
            .ok_or_else(|| err("unterminated ${".into()))?;
        let expr = &body[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(err(format!("invalid variable name {name:?}")));
        }
        let value = match (lookup(name), default) {
            (Some(v), Some(d)) if v.is_empty() => d.to_owned(),
            (Some(v), _) => v,
            (None, Some(d)) => d.to_owned(),
            (None, None) => {
                return Err(err(format!(
                    "environment variable {name} is not set (use ${{{name}:-default}})"
                )))
            }
        };
        out.push_str(&value);
        col += expr.chars().count() + 3;
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("prom".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion() {
        let ok = |s: &str| expand_env(s, &env).map_err(|e| e.to_string());
        assert_eq!(
            ok("url: http://${HOST}:9090"),
            Ok("url: http://prom:9090".into())
        );
        assert_eq!(ok("a: ${NOPE:-x y}"), Ok("a: x y".into()));
        assert_eq!(ok("a: ${EMPTY:-d}"), Ok("a: d".into()));
        assert_eq!(ok("a: ${EMPTY}"), Ok("a: ".into()));
        assert_eq!(ok("a: $$HOST $x"), Ok("a: $HOST $x".into()));
        assert_eq!(ok("a: ${HOST:-}"), Ok("a: prom".into()));
    }

    #[test]
    fn comments_are_not_expanded() {
        let ok = |s: &str| expand_env(s, &env).map_err(|e| e.to_string());
        assert_eq!(ok("# uses ${UNSET}\n"), Ok("# uses ${UNSET}\n".into()));
        assert_eq!(
            ok("a: ${HOST}  # not ${UNSET}\nb: 1\n"),
            Ok("a: prom  # not ${UNSET}\nb: 1\n".into())
        );
        assert_eq!(ok("u: http://x/#${HOST}"), Ok("u: http://x/#prom".into()));
        assert_eq!(ok("s: \"a # ${HOST}\""), Ok("s: \"a # prom\"".into()));
        assert_eq!(ok("s: 'it''s # ${HOST}'"), Ok("s: 'it''s # prom'".into()));
        assert!(ok("s: \"x\" ${UNSET}").is_err());
    }

    #[test]
    fn expansion_errors_carry_a_position() {
        let e = expand_env("a: 1\nb: x${NOPE}\n", &env);
        assert_eq!(
            e.as_ref().map_err(|e| (e.line, e.column)),
            Err((2, 5)),
            "{e:?}"
        );
        assert!(expand_env("a: ${HOST", &env).is_err());
        assert!(expand_env("a: ${HOST\n}", &env).is_err());
        assert!(expand_env("a: ${1X}", &env).is_err());
    }
}
