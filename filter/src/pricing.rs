//! What a request cost: the built-in price table (each price with its source and the date it was
//! read), overridable per model in the configuration (the `price` section, [`compile_price`]),
//! and the cost of a normalized [`Usage`] in integer micro-dollars (never floats for money).
//!
//! Limits, stated in README: a provider's higher tier for very long prompts (Gemini above 200k
//! tokens) and Anthropic's 1-hour cache writes (billed above the 5-minute price used here) are
//! not modelled; batch discounts do not apply to this gateway's traffic.

use serde::Deserialize;
use serde_json::Value;

use crate::config_error::{err, ConfigError};
use crate::usage::Usage;

/// Prices in micro-dollars per million tokens ($2.50 per 1M tokens = 2_500_000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    /// Input read from the provider's prompt cache.
    pub cached_input: u64,
    /// Input written to the prompt cache (Anthropic, Bedrock; 5-minute writes).
    pub cache_write: u64,
}

/// One row of the built-in table.
#[derive(Debug)]
pub struct PriceRow {
    /// The provider's model name. A dated snapshot (`gpt-4o-2024-08-06`) finds its family row by
    /// the longest matching prefix.
    pub model: &'static str,
    pub price: Price,
    pub source: &'static str,
    /// When the price was read from the source.
    pub date: &'static str,
}

const OPENAI: &str = "https://openai.com/api/pricing";
const ANTHROPIC: &str = "https://platform.claude.com/docs/en/about-claude/pricing";
const GEMINI: &str = "https://ai.google.dev/gemini-api/docs/pricing";
const BEDROCK: &str = "https://aws.amazon.com/bedrock/pricing/";
const COHERE: &str = "https://cohere.com/pricing";

const fn row(
    model: &'static str,
    [input, cached_input, cache_write, output]: [u64; 4],
    source: &'static str,
    date: &'static str,
) -> PriceRow {
    PriceRow {
        model,
        price: Price {
            input,
            output,
            cached_input,
            cache_write,
        },
        source,
        date,
    }
}

/// Built-in prices: `[input, cached input, cache write, output]` in micro-dollars per million
/// tokens. Override or extend them with `models.<name>.price` in the configuration.
pub static BUILTIN: &[PriceRow] = &[
    row(
        "gpt-4o",
        [2_500_000, 1_250_000, 0, 10_000_000],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "gpt-4o-mini",
        [150_000, 75_000, 0, 600_000],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "gpt-4.1",
        [2_000_000, 500_000, 0, 8_000_000],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "gpt-4.1-mini",
        [400_000, 100_000, 0, 1_600_000],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "gpt-4.1-nano",
        [100_000, 25_000, 0, 400_000],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "o4-mini",
        [1_100_000, 275_000, 0, 4_400_000],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "text-embedding-3-small",
        [20_000, 0, 0, 0],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "text-embedding-3-large",
        [130_000, 0, 0, 0],
        OPENAI,
        "2026-11-21",
    ),
    row(
        "claude-opus-4-5",
        [5_000_000, 500_000, 6_250_000, 25_000_000],
        ANTHROPIC,
        "2026-11-21",
    ),
    row(
        "claude-sonnet-4-5",
        [3_000_000, 300_000, 3_750_000, 15_000_000],
        ANTHROPIC,
        "2026-11-21",
    ),
    row(
        "claude-sonnet-4",
        [3_000_000, 300_000, 3_750_000, 15_000_000],
        ANTHROPIC,
        "2026-11-21",
    ),
    row(
        "claude-haiku-4-5",
        [1_000_000, 100_000, 1_250_000, 5_000_000],
        ANTHROPIC,
        "2026-11-21",
    ),
    row(
        "claude-3-5-haiku",
        [800_000, 80_000, 1_000_000, 4_000_000],
        ANTHROPIC,
        "2026-11-21",
    ),
    row(
        "gemini-2.5-pro",
        [1_250_000, 125_000, 0, 10_000_000],
        GEMINI,
        "2026-06-17",
    ),
    row(
        "gemini-2.5-flash",
        [300_000, 30_000, 0, 2_500_000],
        GEMINI,
        "2026-06-17",
    ),
    row(
        "gemini-2.5-flash-lite",
        [100_000, 10_000, 0, 400_000],
        GEMINI,
        "2026-06-17",
    ),
    row(
        "gemini-embedding-001",
        [150_000, 0, 0, 0],
        GEMINI,
        "2026-06-17",
    ),
    row(
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        [800_000, 80_000, 1_000_000, 4_000_000],
        BEDROCK,
        "2026-11-21",
    ),
    row(
        "us.amazon.nova-lite-v1:0",
        [60_000, 15_000, 0, 240_000],
        BEDROCK,
        "2026-11-21",
    ),
    row(
        "us.amazon.nova-pro-v1:0",
        [800_000, 200_000, 0, 3_200_000],
        BEDROCK,
        "2026-11-21",
    ),
    row(
        "amazon.titan-embed-text-v2:0",
        [20_000, 0, 0, 0],
        BEDROCK,
        "2026-11-21",
    ),
    // Cohere publishes no cache discount: cached input costs as much as any input.
    row(
        "command-a-03-2025",
        [2_500_000, 2_500_000, 0, 10_000_000],
        COHERE,
        "2026-11-21",
    ),
    row(
        "command-r-08-2024",
        [150_000, 150_000, 0, 600_000],
        COHERE,
        "2026-11-21",
    ),
    row("embed-v4.0", [120_000, 0, 0, 0], COHERE, "2026-11-21"),
];

/// The built-in price of a provider's model: an exact row, else the longest row whose name is a
/// prefix followed by `-` (a dated snapshot of that family).
pub fn builtin(model: &str) -> Option<&'static PriceRow> {
    BUILTIN.iter().find(|r| r.model == model).or_else(|| {
        BUILTIN
            .iter()
            .filter(|r| {
                model
                    .strip_prefix(r.model)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|date| date.starts_with(|c: char| c.is_ascii_digit()))
            })
            .max_by_key(|r| r.model.len())
    })
}

/// The cost of one request in micro-dollars, rounded to the nearest. Cached and cache-written
/// input are priced at their own rates and not again as plain input (OpenAI counts them inside
/// `prompt_tokens`; the translators normalize every provider to that).
pub fn cost_micros(usage: &Usage, price: &Price) -> u64 {
    let cached = usage.cached_prompt.min(usage.prompt);
    let written = usage.cache_write.min(usage.prompt - cached);
    let plain = usage.prompt - cached - written;
    let micro_per_mtok = u128::from(plain) * u128::from(price.input)
        + u128::from(cached) * u128::from(price.cached_input)
        + u128::from(written) * u128::from(price.cache_write)
        + u128::from(usage.completion) * u128::from(price.output);
    u64::try_from((micro_per_mtok + 500_000) / 1_000_000).unwrap_or(u64::MAX)
}

/// Micro-dollars per million tokens from a configured price in dollars per million tokens;
/// `None` for a negative, non-finite or absurd (over $1M per 1M tokens) value.
pub fn from_dollars(dollars_per_mtok: f64) -> Option<u64> {
    (dollars_per_mtok.is_finite() && (0.0..=1_000_000.0).contains(&dollars_per_mtok))
        .then(|| (dollars_per_mtok * 1_000_000.0).round() as u64)
}

/// Dollars from micro-dollars, for logs and the access log (`0.001234`).
pub fn format_dollars(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A price override (`models.<name>.price`, `...targets[n].price`) in US dollars per million
/// tokens, as providers publish them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceSection {
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    cache_write: Option<f64>,
}

/// Compiles a price override found at `at` (its field path).
pub fn compile_price(value: &Value, at: &str) -> Result<Price, ConfigError> {
    let raw = PriceSection::deserialize(value).map_err(|e| err(at, e.to_string()))?;
    let dollars = |field: &str, v: f64| {
        from_dollars(v).ok_or_else(|| {
            err(
                format!("{at}.{field}"),
                "must be a number of US dollars per million tokens, from 0 to 1000000",
            )
        })
    };
    let input = dollars("input", raw.input)?;
    Ok(Price {
        input,
        output: dollars("output", raw.output)?,
        // Without a cache price, cached input costs as much as any input.
        cached_input: raw
            .cached_input
            .map(|v| dollars("cached_input", v))
            .transpose()?
            .unwrap_or(input),
        cache_write: raw
            .cache_write
            .map(|v| dollars("cache_write", v))
            .transpose()?
            .unwrap_or(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, cached: u64, written: u64, completion: u64) -> Usage {
        Usage {
            prompt,
            completion,
            total: prompt + completion,
            cached_prompt: cached,
            cache_write: written,
            reasoning: 0,
        }
    }

    #[test]
    fn plain_tokens_at_list_price() {
        // gpt-4o: 1,000 input at $2.50/M = $0.0025; 500 output at $10/M = $0.005.
        let p = builtin("gpt-4o").unwrap().price;
        assert_eq!(cost_micros(&usage(1_000, 0, 0, 500), &p), 2_500 + 5_000);
    }

    #[test]
    fn cached_input_is_not_charged_twice() {
        // OpenAI: 10,000 prompt tokens of which 8,000 cached; gpt-4o-mini $0.15 / $0.075 / $0.60.
        // 2,000 × 0.15 + 8,000 × 0.075 = 300 + 600 micro-dollars; 100 output × 0.60 = 60.
        let p = builtin("gpt-4o-mini").unwrap().price;
        assert_eq!(cost_micros(&usage(10_000, 8_000, 0, 100), &p), 960);
    }

    #[test]
    fn anthropic_cache_reads_and_writes_at_their_own_rates() {
        // claude-sonnet-4-5: 100 plain × $3 + 2,000 read × $0.30 + 1,000 written × $3.75
        // + 50 output × $15 = 300 + 600 + 3,750 + 750 micro-dollars.
        let p = builtin("claude-sonnet-4-5").unwrap().price;
        assert_eq!(cost_micros(&usage(3_100, 2_000, 1_000, 50), &p), 5_400);
    }

    #[test]
    fn rounds_to_the_nearest_micro_dollar() {
        let p = Price {
            input: 150_000,
            ..Default::default()
        }; // $0.15/M
        assert_eq!(cost_micros(&usage(3, 0, 0, 0), &p), 0); // 0.45 µ$
        assert_eq!(cost_micros(&usage(4, 0, 0, 0), &p), 1); // 0.6 µ$
        assert_eq!(cost_micros(&usage(10, 0, 0, 0), &p), 2); // 1.5 µ$ rounds up
    }

    #[test]
    fn inconsistent_usage_does_not_underflow() {
        let p = builtin("gpt-4o").unwrap().price;
        assert_eq!(cost_micros(&usage(10, 50, 50, 0), &p), 13); // 10 cached at $1.25/M = 12.5
    }

    #[test]
    fn dated_snapshots_find_their_family_and_nothing_else() {
        assert_eq!(
            builtin("gpt-4o-2024-08-06").map(|r| r.model),
            Some("gpt-4o")
        );
        assert_eq!(
            builtin("gpt-4o-mini-2024-07-18").map(|r| r.model),
            Some("gpt-4o-mini")
        );
        assert_eq!(
            builtin("claude-sonnet-4-5-20250929").map(|r| r.model),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            builtin("gpt-4o-audio-preview").map(|r| r.model),
            None,
            "another model, not a snapshot"
        );
        assert!(builtin("unknown").is_none());
    }

    #[test]
    fn every_row_has_a_source_and_a_date() {
        for r in BUILTIN {
            assert!(r.source.starts_with("https://"), "{}", r.model);
            assert_eq!(r.date.len(), 10, "{}", r.model);
            assert!(r.price.input > 0, "{}", r.model);
        }
    }

    #[test]
    fn configured_dollars_convert_exactly() {
        assert_eq!(from_dollars(2.5), Some(2_500_000));
        assert_eq!(from_dollars(0.075), Some(75_000));
        assert_eq!(from_dollars(-1.0), None);
        assert_eq!(from_dollars(f64::NAN), None);
        assert_eq!(format_dollars(1_234), "0.001234");
        assert_eq!(format_dollars(12_000_001), "12.000001");
    }
}
