//! The language of the stick's own words on screen: German or English.

use serde::{Deserialize, Serialize};

/// `[kiosk] language`: `de` (the default) or `en`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    De,
    En,
}

impl Language {
    /// The config's and the command line's name: `de`, `en`.
    pub fn code(self) -> &'static str {
        match self {
            Language::De => "de",
            Language::En => "en",
        }
    }

    /// The inverse of [`Language::code`].
    pub fn from_code(code: &str) -> Option<Language> {
        [Language::De, Language::En]
            .into_iter()
            .find(|language| language.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_serde() {
        for language in [Language::De, Language::En] {
            assert_eq!(Language::from_code(language.code()), Some(language));
            assert_eq!(
                serde_json::to_string(&language).expect("json"),
                format!("\"{}\"", language.code())
            );
        }
        assert_eq!(Language::from_code("fr"), None);
        assert_eq!(Language::default(), Language::De);
    }
}
