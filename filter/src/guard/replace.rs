//! Replacements from external guards' verdicts: spans of the texts a guard was sent, to be
//! masked by the gateway (a typed placeholder, restorable like the built-in masks', or a
//! literal text). Everything a service sends is checked before it is used: a span must lie in
//! its text, on character boundaries, and a verdict carries a bounded number of them; a verdict
//! that breaks a rule is a failure of its guard (its failure mode applies).
//!
//! Offsets: the generic webhook contract uses UTF-8 byte offsets into each text; Presidio's
//! analyzer answers in Unicode code points (Python `str` indices) into the one text it was sent
//! (the texts joined by [`JOIN`]), converted here with one walk over the texts.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Most replacements one verdict may carry (each held until the request ends).
pub const MAX_REPLACEMENTS: usize = 1024;
/// Longest literal replacement text.
pub const MAX_LITERAL: usize = 256;
/// Longest placeholder label (`[LABEL_1]`).
pub const MAX_LABEL: usize = 32;
/// What joins the texts into the one text Presidio analyses.
pub const JOIN: &str = "\n\n";

/// One validated replacement: bytes `start..end` of text number `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub text: usize,
    pub start: usize,
    pub end: usize,
    /// The placeholder's type; the guard's label when `None`.
    pub label: Option<String>,
    /// A literal text instead of a placeholder (never restored).
    pub replacement: Option<String>,
}

/// A placeholder label: 1 to 32 upper-case letters, digits or `_` (as in `[EMAIL_1]`).
pub fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A replacement as the generic webhook contract writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplacement {
    pub text: usize,
    pub start: usize,
    pub end: usize,
    pub label: Option<String>,
    pub replacement: Option<String>,
}

/// Checks a webhook's replacements against the texts it was sent.
pub fn validate(raw: Vec<RawReplacement>, texts: &[String]) -> Result<Vec<Replacement>, String> {
    if raw.len() > MAX_REPLACEMENTS {
        return Err(format!(
            "{} replacements (at most {MAX_REPLACEMENTS})",
            raw.len()
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let Some(text) = texts.get(r.text) else {
            return Err(format!(
                "replacement {i}: text {} was not sent ({} texts)",
                r.text,
                texts.len()
            ));
        };
        if r.start >= r.end || r.end > text.len() {
            return Err(format!(
                "replacement {i}: span {}..{} is not inside text {} ({} bytes)",
                r.start,
                r.end,
                r.text,
                text.len()
            ));
        }
        if !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            return Err(format!(
                "replacement {i}: span {}..{} cuts a character (offsets are UTF-8 bytes)",
                r.start, r.end
            ));
        }
        if let Some(label) = r.label.as_deref().filter(|l| !is_label(l)) {
            return Err(format!(
                "replacement {i}: label '{}' is not 1 to {MAX_LABEL} upper-case letters, digits or '_'",
                label.chars().take(40).collect::<String>()
            ));
        }
        if r.label.is_some() && r.replacement.is_some() {
            return Err(format!(
                "replacement {i}: a label or a replacement, not both"
            ));
        }
        if r.replacement
            .as_ref()
            .is_some_and(|t| t.len() > MAX_LITERAL)
        {
            return Err(format!(
                "replacement {i}: replacement longer than {MAX_LITERAL} bytes"
            ));
        }
        out.push(Replacement {
            text: r.text,
            start: r.start,
            end: r.end,
            label: r.label,
            replacement: r.replacement,
        });
    }
    Ok(out)
}

/// A span found in the joined text, in code points, and its entity type.
pub struct CodePointSpan<'a> {
    pub start: usize,
    pub end: usize,
    pub entity: &'a str,
}

/// Presidio's spans (code points into `texts` joined by [`JOIN`]) as replacements of each
/// text, labelled with the entity type (or the guard's label when the type cannot be one). A
/// span that starts in a separator is dropped; one that runs past its text's end is cut there.
pub fn from_code_points(
    spans: &[CodePointSpan],
    texts: &[String],
) -> Result<Vec<Replacement>, String> {
    if spans.len() > MAX_REPLACEMENTS {
        return Err(format!(
            "{} results (at most {MAX_REPLACEMENTS})",
            spans.len()
        ));
    }
    let mut points: Vec<usize> = spans.iter().flat_map(|s| [s.start, s.end]).collect();
    points.sort_unstable();
    points.dedup();
    let (located, total) = locate(texts, &points);
    let mut out = Vec::with_capacity(spans.len());
    for s in spans {
        if s.start >= s.end || s.end > total {
            return Err(format!(
                "span {}..{} is not inside the text ({total} characters)",
                s.start, s.end
            ));
        }
        let Some(&(text, start)) = located.get(&s.start) else {
            continue; // starts in a separator
        };
        let text_len = texts.get(text).map_or(0, String::len);
        let end = match located.get(&s.end) {
            Some(&(t, end)) if t == text => end,
            _ => text_len,
        };
        if start >= end {
            continue;
        }
        out.push(Replacement {
            text,
            start,
            end,
            label: is_label(s.entity).then(|| s.entity.to_string()),
            replacement: None,
        });
    }
    Ok(out)
}

/// Where each code point offset of the joined text falls: (text, byte offset in it); an offset
/// at a text's end maps to its length, one inside a separator to nothing. Also the joined
/// text's length in code points. One walk over the texts.
fn locate(texts: &[String], points: &[usize]) -> (BTreeMap<usize, (usize, usize)>, usize) {
    let separator = JOIN.chars().count();
    let mut out = BTreeMap::new();
    let mut wanted = points.iter().peekable();
    let mut cp = 0usize;
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            cp = cp.saturating_add(separator);
        }
        while wanted.next_if(|&&p| p < cp).is_some() {} // inside the separator
        if wanted.peek().is_none() {
            break;
        }
        for (byte, _) in text.char_indices() {
            while wanted.next_if(|&&p| p == cp).is_some() {
                out.insert(cp, (i, byte));
            }
            cp = cp.saturating_add(1);
        }
        while wanted.next_if(|&&p| p == cp).is_some() {
            out.insert(cp, (i, text.len()));
        }
    }
    let total = texts
        .iter()
        .map(|t| t.chars().count())
        .sum::<usize>()
        .saturating_add(separator.saturating_mul(texts.len().saturating_sub(1)));
    (out, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: usize, start: usize, end: usize) -> RawReplacement {
        RawReplacement {
            text,
            start,
            end,
            label: None,
            replacement: None,
        }
    }

    #[test]
    fn webhook_spans_must_lie_on_characters_of_a_sent_text() {
        let texts = vec!["Grüße, Anna".to_string(), "b".to_string()];
        // "ü" is two bytes: "Anna" is bytes 9..13.
        let ok = validate(vec![raw(0, 9, 13), raw(1, 0, 1)], &texts).unwrap();
        assert_eq!(&texts[0][ok[0].start..ok[0].end], "Anna");
        for (bad, why) in [
            (raw(0, 3, 4), "cuts a character"),
            (raw(0, 9, 14), "not inside"),
            (raw(0, 5, 5), "not inside"),
            (raw(2, 0, 1), "was not sent"),
        ] {
            let e = validate(vec![bad], &texts).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let mut labelled = raw(0, 9, 13);
        labelled.label = Some("person".into());
        assert!(validate(vec![labelled], &texts)
            .unwrap_err()
            .contains("label"));
        let mut both = raw(0, 9, 13);
        both.label = Some("PERSON".into());
        both.replacement = Some("x".into());
        assert!(validate(vec![both], &texts)
            .unwrap_err()
            .contains("not both"));
        let many: Vec<RawReplacement> = (0..=MAX_REPLACEMENTS).map(|_| raw(1, 0, 1)).collect();
        assert!(validate(many, &texts).unwrap_err().contains("at most"));
    }

    #[test]
    fn code_points_map_to_bytes_of_each_text() {
        // Joined: "Zoë ist da" + "\n\n" + "Ring Émile" — "Émile" at code points 17..22.
        let texts = vec!["Zoë ist da".to_string(), "Ring Émile".to_string()];
        let spans = [
            CodePointSpan {
                start: 0,
                end: 3,
                entity: "PERSON",
            },
            CodePointSpan {
                start: 17,
                end: 22,
                entity: "PERSON",
            },
            // Starts in the separator: dropped.
            CodePointSpan {
                start: 11,
                end: 14,
                entity: "X",
            },
            // Runs past its text: cut at its end.
            CodePointSpan {
                start: 8,
                end: 13,
                entity: "lower case",
            },
        ];
        let out = from_code_points(&spans, &texts).unwrap();
        let cut: Vec<(&str, Option<&str>)> = out
            .iter()
            .map(|r| (&texts[r.text][r.start..r.end], r.label.as_deref()))
            .collect();
        assert_eq!(
            cut,
            [
                ("Zoë", Some("PERSON")),
                ("Émile", Some("PERSON")),
                ("da", None)
            ]
        );
        let outside = [CodePointSpan {
            start: 20,
            end: 23,
            entity: "PERSON",
        }];
        assert!(from_code_points(&outside, &texts).is_err());
    }
}
