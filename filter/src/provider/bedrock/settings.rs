//! The settings of a Bedrock provider (`providers.<id>`, besides the common keys): the AWS
//! region and the environment variables holding the AWS credentials for SigV4.

use serde::Deserialize;

use crate::config_error::{err, ConfigError};
use crate::provider::config::{read_env, Credentials};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockSettings {
    /// The AWS region, e.g. `us-east-1`: the runtime host and the signing scope.
    #[serde(default)]
    pub region: String,
    #[serde(default = "default_access_key_id_env")]
    pub aws_access_key_id_env: String,
    #[serde(default = "default_secret_access_key_env")]
    pub aws_secret_access_key_env: String,
    #[serde(default = "default_session_token_env")]
    pub aws_session_token_env: String,
}

// The variable names of the AWS SDKs and CLI.
fn default_access_key_id_env() -> String {
    "AWS_ACCESS_KEY_ID".into()
}

fn default_secret_access_key_env() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}

fn default_session_token_env() -> String {
    "AWS_SESSION_TOKEN".into()
}

impl BedrockSettings {
    /// Refuses values serde lets through; `here` is the provider's field path.
    pub fn check(&self, here: &str) -> Result<(), ConfigError> {
        if !is_region(&self.region) {
            return Err(err(
                format!("{here}.region"),
                format!(
                    "'{}' is not an AWS region (e.g. us-east-1); required for bedrock",
                    self.region
                ),
            ));
        }
        Ok(())
    }

    /// The AWS keys from the environment; `Missing` (the provider is off) when the access key
    /// id or the secret is unset. The session token is optional.
    pub fn credentials(
        &self,
        here: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Credentials, ConfigError> {
        let access_var = &self.aws_access_key_id_env;
        let secret_var = &self.aws_secret_access_key_env;
        let access = read_env(access_var, &format!("{here}.aws_access_key_id_env"), env)?;
        let secret = read_env(
            secret_var,
            &format!("{here}.aws_secret_access_key_env"),
            env,
        )?;
        let session_token = read_env(
            &self.aws_session_token_env,
            &format!("{here}.aws_session_token_env"),
            env,
        )?;
        Ok(match (access, secret) {
            (Some(access_key_id), Some(secret_access_key)) => Credentials::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            },
            (access, secret) => Credentials::Missing(
                [
                    (access.is_none(), access_var),
                    (secret.is_none(), secret_var),
                ]
                .into_iter()
                .filter(|(missing, _)| *missing)
                .map(|(_, name)| name.clone())
                .collect(),
            ),
        })
    }
}

fn is_region(s: &str) -> bool {
    s.len() >= 6
        && s.split('-').count() >= 3
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
