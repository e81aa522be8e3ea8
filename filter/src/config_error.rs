//! What every configuration section shares: [`ConfigError`], the refusal that names the field
//! path, [`field_names`] to tell which keys a section's serde type takes, and [`is_env_name`]. Depends on no
//! domain module, so each of them can own its section without importing the configuration root.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending field, e.g. `providers.openai.api_key_env`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin configuration at `{}`: {}",
            self.field, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// A refusal of the field at `field` (its dotted path).
pub fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// The keys a `#[derive(Deserialize)]` struct takes, as serde itself declares them (renames
/// applied), so a refusal of an unknown key can name the key and no list is kept by hand.
/// Empty for a type that is not a struct.
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The probe only records the names: deserializing always fails, by design.
    let _ = T::deserialize(StructProbe(&mut names));
    names
}

/// A deserializer that holds no data and notes the field names a struct asks it for.
struct StructProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for StructProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// An environment variable's name as the configuration may give it (`api_key_env`, `key_env`):
/// a letter or `_`, then letters, digits and `_`.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        plain: u32,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        optional: Option<bool>,
    }

    #[test]
    fn field_names_are_the_serde_names_of_a_struct() {
        assert_eq!(field_names::<Sample>(), ["plain", "type", "optional"]);
        assert!(field_names::<u32>().is_empty());
        assert!(field_names::<Vec<String>>().is_empty());
        // The probe leaves the type itself working.
        let sample: Sample = serde_json::from_str(r#"{"plain": 1, "type": "t"}"#).unwrap();
        assert_eq!(
            sample,
            Sample {
                plain: 1,
                kind: "t".into(),
                optional: None
            }
        );
    }

    #[test]
    fn the_display_names_the_field() {
        let e = err("providers.p.region", "required");
        assert_eq!(
            e.to_string(),
            "invalid plugin configuration at `providers.p.region`: required"
        );
    }
}
