//! What `--sql` and `--where` may say: statements that only read. Checked on the text, before
//! the features are opened, because some writes happen even on a dataset opened read-only
//! (SQLite's `VACUUM INTO` writes a copy anywhere; SpatiaLite's `Export...` and `BlobToFile`
//! functions write files).
//!
//! The text is split into words outside string literals, quoted identifiers and comments; a
//! statement must start with `SELECT` or `WITH`, be the only statement, and name no statement
//! that writes nor a function that writes files. A column whose name is such a word is written
//! quoted (`"update"`).

/// Statement keywords that change a database or write a file (bare words, any case).
const WRITING_KEYWORDS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "CREATE", "DROP", "ALTER", "ATTACH", "DETACH", "VACUUM",
    "PRAGMA", "REINDEX", "ANALYZE", "INTO",
];

/// Functions that write files or load code (SQLite, SpatiaLite, PostgreSQL).
const WRITING_FUNCTIONS: &[&str] = &[
    "blobtofile",
    "writefile",
    "load_extension",
    "xb_storexml",
    "edit",
    "lo_export",
    "lo_import",
    "pg_file_write",
    "dblink_exec",
];

/// Prefixes of function names that export or import files (SpatiaLite's `ExportSHP`,
/// `ExportGeoJSON2`, `ImportSHP`, ...).
const WRITING_FUNCTION_PREFIXES: &[&str] = &["export", "import"];

/// A word of the statement: a bare word, or one `;` separating statements.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare word (keyword, column or function name), and whether `(` follows it.
    Word { text: String, called: bool },
    /// `;`.
    Semicolon,
}

/// Why `--sql` is refused, or `None` when it only reads.
pub fn refusal_of_statement(sql: &str) -> Option<String> {
    let tokens = match tokens(sql) {
        Ok(tokens) => tokens,
        Err(why) => return Some(why),
    };
    if let Some(position) = tokens.iter().position(|t| *t == Token::Semicolon) {
        if position + 1 < tokens.len() {
            return Some("holds more than one statement".to_string());
        }
    }
    match tokens.first() {
        Some(Token::Word { text, .. }) if is_one_of(text, &["SELECT", "WITH"]) => {}
        Some(Token::Word { text, .. }) => {
            return Some(format!("starts with {}, not SELECT or WITH", text.to_uppercase()))
        }
        _ => return Some("is not a SELECT statement".to_string()),
    }
    refusal_of_words(&tokens)
}

/// Why `--where` is refused, or `None` when it only reads.
pub fn refusal_of_filter(filter: &str) -> Option<String> {
    let tokens = match tokens(filter) {
        Ok(tokens) => tokens,
        Err(why) => return Some(why),
    };
    if tokens.contains(&Token::Semicolon) {
        return Some("holds a ';' (a filter is one expression)".to_string());
    }
    refusal_of_words(&tokens)
}

/// Why the words of a statement or filter are refused: a writing keyword or function.
fn refusal_of_words(tokens: &[Token]) -> Option<String> {
    tokens.iter().find_map(|token| match token {
        Token::Word { text, called } if is_writing_function(text, *called) => {
            Some(format!("calls {text}(), which writes files"))
        }
        // REPLACE(x, a, b) is the string function.
        Token::Word { text, called: true } if text.eq_ignore_ascii_case("REPLACE") => None,
        Token::Word { text, .. } if is_one_of(text, &["SELECT", "WITH"]) => None,
        Token::Word { text, .. } if is_one_of(text, WRITING_KEYWORDS) => {
            Some(format!("holds {}, which writes", text.to_uppercase()))
        }
        _ => None,
    })
}

fn is_writing_function(name: &str, called: bool) -> bool {
    let lower = name.to_ascii_lowercase();
    called
        && (WRITING_FUNCTIONS.contains(&lower.as_str())
            || WRITING_FUNCTION_PREFIXES.iter().any(|p| lower.starts_with(p)))
}

fn is_one_of(word: &str, list: &[&str]) -> bool {
    list.iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// The bare words and `;` of `text`, skipping literals ('...'), quoted identifiers ("...",
/// [...], `...`) and comments (-- to the end of the line, /* ... */); an error when one of those
/// is not closed.
fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        i = match c {
            '\'' => skip_quoted(&chars, i, '\'').ok_or("has a string literal that is not closed")?,
            '"' => skip_quoted(&chars, i, '"').ok_or("has a quoted name that is not closed")?,
            '`' => skip_quoted(&chars, i, '`').ok_or("has a quoted name that is not closed")?,
            '[' => skip_quoted(&chars, i, ']').ok_or("has a [name] that is not closed")?,
            '-' if next == Some('-') => chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p),
            '/' if next == Some('*') => skip_block_comment(&chars, i).ok_or("has a /* comment that is not closed")?,
            ';' => {
                tokens.push(Token::Semicolon);
                i + 1
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = (i..chars.len())
                    .find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '$'))
                    .unwrap_or(chars.len());
                let called = chars[end..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
                tokens.push(Token::Word {
                    text: chars[i..end].iter().collect(),
                    called,
                });
                end
            }
            _ => i + 1,
        };
    }
    Ok(tokens)
}

/// The index after the quoted run opening at `start` and closed by `close` (doubled `close`
/// is an escaped one), or `None` when not closed.
fn skip_quoted(chars: &[char], start: usize, close: char) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == close {
            if close != ']' && chars.get(i + 1) == Some(&close) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The index after the `/* ... */` comment opening at `start`, or `None` when not closed.
fn skip_block_comment(chars: &[char], start: usize) -> Option<usize> {
    (start + 2..chars.len().saturating_sub(1))
        .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
        .map(|j| j + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_statements_pass() {
        for sql in [
            "SELECT * FROM points",
            "select id, replace(name, 'a', 'b') AS n FROM points WHERE name = 'DROP TABLE x; --'",
            "WITH big AS (SELECT * FROM p WHERE area > 3) SELECT * FROM big;",
            "SELECT \"update\", [insert], `delete` FROM t -- VACUUM INTO 'x'\n",
            "SELECT * FROM t /* ATTACH */ WHERE ST_Area(geom) > 1",
            "SELECT 'it''s', \"a\"\"b\" FROM t",
        ] {
            assert_eq!(refusal_of_statement(sql), None, "{sql}");
        }
    }

    #[test]
    fn writing_statements_are_refused() {
        for (sql, why) in [
            ("VACUUM INTO '/tmp/copy.gpkg'", "starts with VACUUM"),
            ("  -- hello\n vacuum into 'x'", "starts with VACUUM"),
            ("SELECT 1; VACUUM INTO 'x'", "more than one statement"),
            ("WITH x AS (SELECT 1) DELETE FROM t", "holds DELETE"),
            ("WITH x AS (SELECT 1) REPLACE INTO t VALUES (1)", "holds REPLACE"),
            (
                "SELECT ExportGeoJSON2('t', 'geom', '/tmp/x.json') FROM t",
                "calls ExportGeoJSON2()",
            ),
            ("SELECT BlobToFile(x'00', '/tmp/x') FROM t", "calls BlobToFile()"),
            ("SELECT * FROM t WHERE name = 'unclosed", "not closed"),
            ("SELECT * FROM t /* open", "not closed"),
            ("UPDATE t SET a = 1", "starts with UPDATE"),
            ("", "not a SELECT"),
        ] {
            let refusal = refusal_of_statement(sql).unwrap_or_default();
            assert!(refusal.contains(why), "{sql}: {refusal}");
        }
    }

    #[test]
    fn filters_are_one_reading_expression() {
        assert_eq!(refusal_of_filter("name = 'a;b' AND id > 3"), None);
        assert_eq!(refusal_of_filter("replace(name, 'x', '') = 'a'"), None);
        assert!(refusal_of_filter("1=1) ; VACUUM INTO 'x' --").is_some());
        assert!(refusal_of_filter("ExportSHP('t','g','/tmp/x','UTF-8') > 0").is_some());
        assert!(refusal_of_filter("id IN (SELECT id FROM t)").is_none());
    }
}
