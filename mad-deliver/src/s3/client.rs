//! The connection to one bucket: building the object_store client from the options, and the
//! few operations the S3 channel and the hub need, each one attempt with errors mapped.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use mad_core::{Error, Result, SecretRef};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::path::{Path as Key, PathPart};
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt,
    PutOptions, PutPayload, RetryConfig,
};

use super::config::{CredentialSource, S3Options, ServerSideEncryption};
use super::error::{self, BACKEND, Scrubber, StoreReply};

/// The user metadata entry holding an object's SHA-256 (hex), for confirming an upload.
const SHA256_METADATA: &str = "sha256";

/// The largest object one PUT may carry.
const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// An object as the store describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub size: u64,
    /// The SHA-256 recorded when mad uploaded it, when present.
    pub sha256: Option<String>,
}

/// An object found by listing.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub key: Key,
    pub modified: SystemTime,
}

/// One bucket of an S3 or S3-compatible store.
#[derive(Clone)]
pub(crate) struct Bucket {
    store: Arc<dyn ObjectStore>,
    name: String,
    endpoint: String,
    scrub: Scrubber,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Bucket {
    /// A client for `options.bucket`; secrets are read now, the store is first contacted at
    /// the first operation.
    pub fn connect(options: &S3Options) -> Result<Bucket> {
        check(options)?;

        let region = options.region.as_deref().unwrap_or("us-east-1");
        let timeout = Duration::from_secs(options.timeout_secs.max(1));
        let mut builder = match options.credentials {
            CredentialSource::Environment => AmazonS3Builder::from_env(),
            CredentialSource::Keys => AmazonS3Builder::new(),
        };
        builder = builder
            .with_bucket_name(&options.bucket)
            .with_region(region)
            .with_allow_http(options.allow_http)
            .with_checksum_algorithm(Checksum::SHA256)
            .with_retry(RetryConfig {
                max_retries: 0,
                retry_timeout: timeout,
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(options.allow_http)
                    .with_timeout(timeout)
                    .with_connect_timeout(timeout.min(Duration::from_secs(10))),
            )
            .with_http_connector(Connector);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }

        let mut secrets = Vec::new();
        if options.credentials == CredentialSource::Keys {
            let resolve = |name: &str, r: &Option<SecretRef>| {
                r.as_ref()
                    .map(|r| {
                        r.resolve()
                            .map_err(|e| e.with_backend(BACKEND).context(name))
                    })
                    .transpose()
            };
            let (Some(key_id), Some(secret)) = (
                resolve("access_key_id", &options.access_key_id)?,
                resolve("secret_access_key", &options.secret_access_key)?,
            ) else {
                return Err(error::config(
                    "the S3 channel needs access_key_id and secret_access_key (references such \
                     as \"env:S3_SECRET_ACCESS_KEY\"), or credentials = \"environment\" to use \
                     the default AWS credential chain",
                ));
            };
            builder = builder
                .with_access_key_id(key_id.expose())
                .with_secret_access_key(secret.expose());
            let token = resolve("session_token", &options.session_token)?;
            if let Some(token) = &token {
                builder = builder.with_token(token.expose());
            }
            secrets.extend([key_id, secret]);
            secrets.extend(token);
        }

        builder = match (options.sse, &options.kms_key_id) {
            (None, _) => builder,
            (Some(ServerSideEncryption::Kms), Some(key)) => builder.with_sse_kms_encryption(key),
            (Some(ServerSideEncryption::Aes256), _) => builder.with_config(sse_key()?, "AES256"),
            (Some(ServerSideEncryption::Kms), None) => builder.with_config(sse_key()?, "aws:kms"),
        };

        let scrub = Scrubber::new(secrets);
        let store = builder.build().map_err(|e| {
            error::config(format!(
                "the S3 options cannot be used: {}",
                scrub.scrub(&e.to_string())
            ))
        })?;
        Ok(Bucket {
            store: Arc::new(store),
            name: options.bucket.clone(),
            endpoint: options
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("AWS {region}")),
            scrub,
        })
    }

    /// The key made of `parts` (folders, then the file name); every part must already be a
    /// safe file name, so the key never climbs out of the folders it names.
    pub fn key<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> Result<Key> {
        let parts = parts
            .into_iter()
            .map(|part| {
                PathPart::parse(part).map_err(|e| {
                    Error::internal(format!("\"{part}\" is not a safe key part: {e}"))
                        .with_backend(BACKEND)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Key::from_iter(parts))
    }

    /// How a receipt names an object: `s3://bucket/key`.
    pub fn location(&self, key: &Key) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// Uploads `bytes` under `key` in one request: the object appears whole or not at all.
    /// The store checks the SHA-256 of what arrived, and keeps it as metadata for `head`.
    pub async fn put(&self, key: &Key, bytes: Bytes, media_type: &str, sha256: &str) -> Result<()> {
        if bytes.len() as u64 > MAX_PUT_BYTES {
            return Err(Error::unsupported(
                BACKEND,
                format!(
                    "documents over 5 GiB in one upload ({} is {} bytes)",
                    key,
                    bytes.len()
                ),
            ));
        }
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(media_type.to_string()),
        );
        attributes.insert(
            Attribute::Metadata(SHA256_METADATA.into()),
            AttributeValue::from(sha256.to_string()),
        );
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };

        self.store
            .put_opts(key, PutPayload::from_bytes(bytes), options)
            .await
            .map(|_| ())
            .map_err(|e| self.error(e, format_args!("uploading {}", self.location(key))))
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn head(&self, key: &Key) -> Result<Option<Stored>> {
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self.store.get_opts(key, options).await {
            Ok(result) => Ok(Some(Stored {
                size: result.meta.size,
                sha256: result
                    .attributes
                    .get(&Attribute::Metadata(SHA256_METADATA.into()))
                    .map(|v| v.as_ref().to_string()),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e, format_args!("looking up {}", self.location(key)))),
        }
    }

    pub async fn get(&self, key: &Key) -> Result<Bytes> {
        let what = || format!("downloading {}", self.location(key));
        let result = self
            .store
            .get(key)
            .await
            .map_err(|e| self.error(e, what()))?;
        result.bytes().await.map_err(|e| self.error(e, what()))
    }

    /// Deletes the object at `key`; an object already gone is fine.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e, format_args!("deleting {}", self.location(key)))),
        }
    }

    /// Every object below `prefix`.
    pub async fn list(&self, prefix: &Key) -> Result<Vec<Listed>> {
        self.store
            .list(Some(prefix))
            .map_ok(|meta| Listed {
                key: meta.location,
                modified: meta.last_modified.into(),
            })
            .try_collect()
            .await
            .map_err(|e| self.error(e, format_args!("listing {}", self.location(prefix))))
    }

    fn error(&self, err: object_store::Error, what: impl fmt::Display) -> Error {
        error::store(err, format_args!("{} ({what})", self.endpoint), &self.scrub)
    }
}

/// object_store's configuration key for the server-side encryption type.
fn sse_key() -> Result<AmazonS3ConfigKey> {
    "aws_server_side_encryption".parse().map_err(|e| {
        Error::internal(format!("object_store has no encryption setting: {e}"))
            .with_backend(BACKEND)
    })
}

/// Checks the options that object_store would accept but mad does not.
fn check(options: &S3Options) -> Result<()> {
    if options.bucket.trim().is_empty() {
        return Err(error::config(
            "the S3 channel needs a bucket: set bucket to the bucket's name",
        ));
    }
    let has_keys = options.access_key_id.is_some()
        || options.secret_access_key.is_some()
        || options.session_token.is_some();
    if options.credentials == CredentialSource::Environment && has_keys {
        return Err(error::config(
            "credentials = \"environment\" takes the keys from the AWS credential chain; remove \
             access_key_id, secret_access_key and session_token, or set credentials = \"keys\"",
        ));
    }
    if options.kms_key_id.is_some() && options.sse != Some(ServerSideEncryption::Kms) {
        return Err(error::config(
            "kms_key_id only applies with sse = \"aws:kms\"; set sse or remove kms_key_id",
        ));
    }
    match &options.endpoint {
        Some(endpoint) => check_endpoint(endpoint, options.allow_http),
        None if options.allow_http => Err(error::config(
            "allow_http only applies to an endpoint on this machine; remove it",
        )),
        None => Ok(()),
    }
}

fn check_endpoint(endpoint: &str, allow_http: bool) -> Result<()> {
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
        error::config(format!(
            "the endpoint \"{endpoint}\" needs a scheme, as in https://s3.example.com"
        ))
    })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let local = is_loopback(host);

    match (scheme.to_ascii_lowercase().as_str(), allow_http) {
        ("https", false) => Ok(()),
        ("https", true) => Err(error::config(
            "allow_http is set but the endpoint uses https; remove allow_http",
        )),
        ("http", true) if local => Ok(()),
        ("http", true) => Err(error::config(format!(
            "allow_http is only accepted for a store on this machine, not {host}; use https so \
             credentials and documents do not cross the network in the clear"
        ))),
        ("http", false) => Err(error::config(format!(
            "the endpoint \"{endpoint}\" uses http; use https, or set allow_http = true for a \
             store on this machine"
        ))),
        _ => Err(error::config(format!(
            "the endpoint \"{endpoint}\" must start with https:// (or http:// on this machine)"
        ))),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Builds object_store's usual HTTP client, wrapped so error replies keep their status,
/// error code and `Retry-After`.
#[derive(Debug, Default)]
struct Connector;

impl HttpConnector for Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(KeepReplies { inner }))
    }
}

/// Passes requests through; an error reply that object_store would not classify itself
/// becomes a [`StoreReply`] error, so the channel can tell a rate limit from a failure.
#[derive(Debug)]
struct KeepReplies {
    inner: HttpClient,
}

/// Replies object_store maps to its own error variants, left to it.
const CLASSIFIED: [u16; 6] = [304, 401, 403, 404, 409, 412];

#[async_trait]
impl HttpService for KeepReplies {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = self.inner.execute(request).await?;
        let status = response.status().as_u16();
        if status < 400 || CLASSIFIED.contains(&status) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Only the code is read from the body; a reply too broken to read keeps its status.
        let body = match response.into_body().bytes().await {
            Ok(body) => String::from_utf8_lossy(&body).into_owned(),
            Err(_) => String::new(),
        };
        let reply = StoreReply {
            status,
            body,
            retry_after,
        };
        Err(HttpError::new(HttpErrorKind::Unknown, reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_on_this_machine() {
        for ok in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(check_endpoint(ok, true).is_ok(), "{ok}");
            assert!(check_endpoint(ok, false).is_err(), "{ok}");
        }
        for remote in ["http://s3.example.com", "http://10.0.0.1:9000"] {
            assert!(check_endpoint(remote, true).is_err(), "{remote}");
        }
        assert!(check_endpoint("https://s3.example.com", false).is_ok());
        assert!(check_endpoint("ftp://s3.example.com", false).is_err());
        assert!(check_endpoint("s3.example.com", false).is_err());
    }
}
