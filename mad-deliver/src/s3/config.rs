//! The options of the S3 channel.

use mad_core::SecretRef;
use serde::{Deserialize, Serialize};

/// Where and how the S3 channel uploads.
///
/// ```toml
/// [channels.bucket]
/// kind = "s3"
/// bucket = "reports"
/// prefix = "{run.date}/{recipient.id}"
/// region = "eu-central-1"
/// access_key_id = "env:S3_ACCESS_KEY_ID"
/// secret_access_key = "env:S3_SECRET_ACCESS_KEY"
/// sse = "AES256"                   # or "aws:kms" with kms_key_id
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// The bucket documents go to.
    pub bucket: String,
    /// The folder-like prefix of every key, with placeholders such as `{recipient.id}`; the
    /// bucket's top level when absent. Keys never leave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The bucket's region; `us-east-1` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The address of an S3-compatible store (`https://s3.example.com`); AWS when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Where the credentials come from.
    #[serde(default)]
    pub credentials: CredentialSource,
    /// The access key id, for `credentials = "keys"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretRef>,
    /// The secret access key, for `credentials = "keys"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretRef>,
    /// A session token that goes with temporary keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
    /// Server-side encryption of the uploaded objects; the bucket's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<ServerSideEncryption>,
    /// The KMS key for `sse = "aws:kms"`; the account's default KMS key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Allow an `http://` endpoint. Only accepted for a store on this machine (`localhost`,
    /// `127.0.0.1`, `::1`): elsewhere, credentials and documents would cross the network in
    /// the clear.
    #[serde(default)]
    pub allow_http: bool,
    /// The longest one request may take, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    60
}

impl S3Options {
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Options {
            bucket: bucket.into(),
            prefix: None,
            region: None,
            endpoint: None,
            credentials: CredentialSource::default(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            sse: None,
            kms_key_id: None,
            allow_http: false,
            timeout_secs: default_timeout_secs(),
        }
    }

    pub fn with_prefix(mut self, template: impl Into<String>) -> Self {
        self.prefix = Some(template.into());
        self
    }

    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Static keys, read when the channel is built.
    pub fn with_keys(mut self, access_key_id: SecretRef, secret_access_key: SecretRef) -> Self {
        self.credentials = CredentialSource::Keys;
        self.access_key_id = Some(access_key_id);
        self.secret_access_key = Some(secret_access_key);
        self
    }

    pub fn with_session_token(mut self, token: SecretRef) -> Self {
        self.session_token = Some(token);
        self
    }

    /// The default AWS credential chain instead of keys in the definition.
    pub fn with_environment_credentials(mut self) -> Self {
        self.credentials = CredentialSource::Environment;
        self
    }

    pub fn with_sse(mut self, sse: ServerSideEncryption) -> Self {
        self.sse = Some(sse);
        self
    }

    pub fn with_kms_key_id(mut self, key: impl Into<String>) -> Self {
        self.kms_key_id = Some(key.into());
        self
    }

    /// Allows an `http://` endpoint on this machine (a local test store).
    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    pub fn with_timeout_secs(mut self, seconds: u64) -> Self {
        self.timeout_secs = seconds;
        self
    }
}

/// Where the S3 credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// `access_key_id` and `secret_access_key` (and an optional `session_token`) from the
    /// definition's secret references.
    #[default]
    Keys,
    /// The default AWS chain: `AWS_*` environment variables, web identity, container or
    /// instance credentials. Only used when asked for, since it reaches for whatever identity
    /// the machine has.
    Environment,
}

/// Server-side encryption of uploaded objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerSideEncryption {
    /// Keys managed by S3 (SSE-S3).
    #[serde(rename = "AES256")]
    Aes256,
    /// Keys managed by KMS (SSE-KMS), with `kms_key_id` or the account's default key.
    #[serde(rename = "aws:kms")]
    Kms,
}
