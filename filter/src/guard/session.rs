//! One request's guardrail state: which guards apply, which fired (for stats and the access
//! log, never with the matched text), and the values it masked with their placeholders, held
//! only for the life of the request so the answer can have them back (`restore: true`).

use super::detect::Span;
use super::replace::Replacement;
use super::{Action, Guardrails, Phase};
use crate::scrub::Scrubber;

/// The longest placeholder (`[` + a label of at most 32 + `_` + a number + `]`): a stream holds
/// back at least this much so a placeholder split across events is restored whole.
pub const LONGEST_PLACEHOLDER: usize = 48;

/// Most values one request may mask (each held until the request ends); past it a match is
/// replaced by its label without a number and is not restored.
const MAX_MASKED: usize = 4096;

/// What a guard pass over one text decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The text with its matches masked.
    Rewritten(String),
    /// The index of the guard that blocked.
    Blocked(usize),
}

#[derive(Debug, Clone)]
struct Masked {
    placeholder: String,
    original: String,
    restore: bool,
}

#[derive(Debug, Default)]
pub struct Session {
    /// Indices into [`Guardrails::guards`].
    pub guards: Vec<usize>,
    masked: Vec<Masked>,
    /// (guard, phase) of every guard that matched, each once.
    fired: Vec<(usize, Phase)>,
    /// Webhook calls still out: (callout token, guard).
    pub webhooks_pending: Vec<(u32, usize)>,
    /// Callout guards that could not answer, whether the request went on (`open`), and when.
    pub failures: Vec<(usize, bool, Phase)>,
    /// A non-streamed answer held for the response-phase callouts' verdicts: what goes on.
    pub answer_waiting: Option<Vec<u8>>,
    /// The request's texts as the webhooks were sent them (their replacements' spans point
    /// into these), until every verdict is in.
    pub sent_texts: Vec<String>,
    /// The replacements of external guards' verdicts: (guard, replacement), applied together
    /// once every verdict is in.
    pub replacements: Vec<(usize, Replacement)>,
}

/// One masked span in a text: a placeholder of `label` (the guard's when `None`, restorable
/// when the guard restores), or a literal `replacement` (never restored).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mask {
    span: Span,
    guard: usize,
    label: Option<String>,
    literal: Option<String>,
}

impl Mask {
    fn of_guard(span: Span, guard: usize) -> Self {
        Self {
            span,
            guard,
            label: None,
            literal: None,
        }
    }
}

impl Session {
    pub fn new(guards: Vec<usize>) -> Self {
        Self {
            guards,
            ..Self::default()
        }
    }

    /// Whether some guard of this request looks at `phase`.
    pub fn covers(&self, rails: &Guardrails, phase: Phase) -> bool {
        self.guards
            .iter()
            .filter_map(|&g| rails.guards.get(g))
            .any(|g| g.phase.covers(phase))
    }

    /// Whether the answer may hold placeholders to put values back into.
    pub fn restores(&self) -> bool {
        self.masked.iter().any(|m| m.restore)
    }

    /// Notes that guard `g` matched (a webhook's block or flag).
    pub fn note(&mut self, g: usize, phase: Phase) {
        if !self.fired.contains(&(g, phase)) {
            self.fired.push((g, phase));
        }
    }

    /// The guards that fired and in which phase.
    pub fn fired(&self) -> &[(usize, Phase)] {
        &self.fired
    }

    /// Runs the guards of `phase` over `text`: the first blocking match wins, masks are
    /// applied together (overlaps: the earlier, then longer, match), monitors only noted.
    pub fn check(
        &mut self,
        rails: &Guardrails,
        scrubber: &Scrubber,
        phase: Phase,
        text: &str,
    ) -> Verdict {
        let mut masks: Vec<Mask> = Vec::new();
        for i in 0..self.guards.len() {
            let Some(&g) = self.guards.get(i) else {
                continue;
            };
            let Some(guard) = rails.guards.get(g) else {
                continue;
            };
            if !guard.phase.covers(phase) {
                continue;
            }
            let spans = rails.find(guard, text, scrubber);
            if spans.is_empty() {
                continue;
            }
            if !self.fired.contains(&(g, phase)) {
                self.fired.push((g, phase));
            }
            match guard.action {
                Action::Block => return Verdict::Blocked(g),
                Action::Mask => masks.extend(spans.into_iter().map(|s| Mask::of_guard(s, g))),
                Action::Monitor => {}
            }
        }
        if masks.is_empty() {
            return Verdict::Clean;
        }
        let restore =
            |g: usize| phase == Phase::Request && rails.guards.get(g).is_some_and(|g| g.restore);
        self.rewrite(rails, text, masks, restore)
            .map_or(Verdict::Clean, Verdict::Rewritten)
    }

    /// Where the mask guards of `phase` match in `text`, or the guard that blocks: what a
    /// stream needs to know before it decides how much text it can let go.
    pub fn spans(
        &mut self,
        rails: &Guardrails,
        scrubber: &Scrubber,
        phase: Phase,
        text: &str,
    ) -> Result<Vec<Span>, usize> {
        let mut out = Vec::new();
        for i in 0..self.guards.len() {
            let Some(guard) = self.guards.get(i).and_then(|&g| rails.guards.get(g)) else {
                continue;
            };
            if !guard.phase.covers(phase) || guard.action == Action::Monitor {
                continue;
            }
            let spans = rails.find(guard, text, scrubber);
            if spans.is_empty() {
                continue;
            }
            let g = self.guards.get(i).copied().unwrap_or_default();
            if guard.action == Action::Block {
                if !self.fired.contains(&(g, phase)) {
                    self.fired.push((g, phase));
                }
                return Err(g);
            }
            out.extend(spans);
        }
        Ok(out)
    }

    /// `text` with every guard's matches masked, whatever the guards' actions: what a body
    /// log keeps. The request's placeholders are reused, so the log reads like the traffic.
    pub fn mask_for_log(
        &mut self,
        rails: &Guardrails,
        scrubber: &Scrubber,
        text: &str,
    ) -> Option<String> {
        let mut masks = Vec::new();
        for (g, guard) in rails.guards.iter().enumerate() {
            masks.extend(
                rails
                    .find(guard, text, scrubber)
                    .into_iter()
                    .map(|s| Mask::of_guard(s, g)),
            );
        }
        self.rewrite(rails, text, masks, |_| false)
    }

    /// `text` (the request's text number `index`) with the external guards' replacements for
    /// it applied; `None` when it has none. Placeholders are restorable when their guard
    /// restores, as the built-in masks'.
    pub fn apply_replacements(
        &mut self,
        rails: &Guardrails,
        index: usize,
        text: &str,
    ) -> Option<String> {
        let masks: Vec<Mask> = self
            .replacements
            .iter()
            .filter(|(_, r)| r.text == index)
            .map(|(g, r)| Mask {
                span: (r.start, r.end),
                guard: *g,
                label: r.label.clone(),
                literal: r.replacement.clone(),
            })
            .collect();
        let restore = |g: usize| rails.guards.get(g).is_some_and(|g| g.restore);
        self.rewrite(rails, text, masks, restore)
    }

    fn rewrite(
        &mut self,
        rails: &Guardrails,
        text: &str,
        mut masks: Vec<Mask>,
        restore: impl Fn(usize) -> bool,
    ) -> Option<String> {
        if masks.is_empty() {
            return None;
        }
        masks.sort_unstable_by_key(|m| (m.span.0, std::cmp::Reverse(m.span.1)));
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for mask in masks {
            let (start, end) = mask.span;
            if start < pos {
                continue; // overlaps one already masked
            }
            let (Some(before), Some(original)) = (text.get(pos..start), text.get(start..end))
            else {
                continue;
            };
            out.push_str(before);
            if let Some(literal) = &mask.literal {
                out.push_str(literal);
            } else {
                let guard_label = rails.guards.get(mask.guard).map(|g| g.label.as_str());
                let label = mask.label.as_deref().or(guard_label).unwrap_or("MASKED");
                out.push_str(&self.placeholder(label, original, restore(mask.guard)));
            }
            pos = end;
        }
        out.push_str(text.get(pos..).unwrap_or_default());
        Some(out)
    }

    /// The placeholder of `original`: the same value gets the same one within a request.
    fn placeholder(&mut self, label: &str, original: &str, restore: bool) -> String {
        let prefix = format!("[{label}_");
        if let Some(m) = self
            .masked
            .iter()
            .find(|m| m.original == original && m.placeholder.starts_with(&prefix))
        {
            return m.placeholder.clone();
        }
        if self.masked.len() >= MAX_MASKED {
            return format!("[{label}]");
        }
        let n = self
            .masked
            .iter()
            .filter(|m| m.placeholder.starts_with(&prefix))
            .count()
            .saturating_add(1);
        let placeholder = format!("{prefix}{n}]");
        self.masked.push(Masked {
            placeholder: placeholder.clone(),
            original: original.to_string(),
            restore,
        });
        placeholder
    }

    /// `text` with every restorable placeholder put back to its value; `None` when none.
    pub fn restore(&self, text: &str) -> Option<String> {
        if !self.restores() || !text.contains('[') {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut changed = false;
        while let Some(open) = rest.find('[') {
            let (before, from) = rest.split_at(open);
            out.push_str(before);
            let close = from
                .get(..LONGEST_PLACEHOLDER.min(from.len()))
                .and_then(|w| w.find(']'));
            let found = close.and_then(|c| {
                let candidate = from.get(..=c)?;
                self.masked
                    .iter()
                    .find(|m| m.restore && m.placeholder == candidate)
                    .map(|m| (m, c))
            });
            match found {
                Some((m, c)) => {
                    out.push_str(&m.original);
                    rest = from.get(c + 1..).unwrap_or_default();
                    changed = true;
                }
                None => {
                    out.push('[');
                    rest = from.get(1..).unwrap_or_default();
                }
            }
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::tests::rails;
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_number_per_type_and_repeat_for_the_same_value() {
        let rails = rails(json!({"policies": {"p": {"all": true, "guards": [
            {"name": "mail", "kind": "email", "action": "mask", "restore": true},
            {"name": "card", "kind": "payment_card", "action": "mask"}
        ]}}}));
        let mut s = Session::new(rails.select("m", None));
        let text = "a@example.com, b@example.com, again a@example.com, card 4242424242424242";
        let Verdict::Rewritten(out) = s.check(&rails, &Scrubber::default(), Phase::Request, text)
        else {
            panic!("not masked");
        };
        assert_eq!(out, "[EMAIL_1], [EMAIL_2], again [EMAIL_1], card [CARD_1]");
        // Only the guard with restore gets its values back.
        assert_eq!(
            s.restore("Hi [EMAIL_2] and [EMAIL_1] ([CARD_1], [EMAIL_3], [x)")
                .as_deref(),
            Some("Hi b@example.com and a@example.com ([CARD_1], [EMAIL_3], [x)")
        );
        assert_eq!(s.fired().len(), 2);
    }

    #[test]
    fn block_wins_and_monitor_changes_nothing() {
        let rails = rails(json!({"policies": {"p": {"all": true, "guards": [
            {"name": "watch-mail", "kind": "email", "action": "monitor"},
            {"name": "no-ssn", "kind": "us_ssn", "action": "block", "phase": "request"}
        ]}}}));
        let mut s = Session::new(rails.select("m", None));
        let sc = Scrubber::default();
        assert_eq!(
            s.check(&rails, &sc, Phase::Request, "mail a@example.com"),
            Verdict::Clean
        );
        assert_eq!(s.fired(), &[(0, Phase::Request)]);
        assert_eq!(
            s.check(&rails, &sc, Phase::Request, "ssn 123-45-6789"),
            Verdict::Blocked(1)
        );
        // The request-only guard does not look at answers.
        assert_eq!(
            s.check(&rails, &sc, Phase::Response, "ssn 123-45-6789"),
            Verdict::Clean
        );
    }
}
