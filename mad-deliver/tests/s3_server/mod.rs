//! The S3 test server of `testing/servers/s3.py` (moto behind a proxy that can cut uploads
//! off or throttle them), started with throwaway credentials, and its independent reader
//! (boto3).
#![allow(dead_code)] // the S3 and hub tests each use their own part of this module

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use mad_deliver::s3::S3Options;

use crate::support::{python, repo_root, secret_file, throwaway};

/// An object as boto3 read it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub content_type: Option<String>,
    pub sse: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Object {
    /// The last part of the key: the file name.
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// The server, running until dropped.
pub struct S3Server {
    child: Child,
    io: Mutex<(Option<ChildStdin>, BufReader<ChildStdout>)>,
    pub port: u16,
    pub key_id: String,
    pub secret: String,
    secrets: tempfile::TempDir,
}

impl S3Server {
    pub fn start(buckets: &[&str]) -> Self {
        let key_id = throwaway("AKIDTEST");
        let secret = throwaway("secret");
        let script = repo_root().join("testing/servers/s3.py");
        let mut command = Command::new(python());
        command
            .arg(&script)
            .env("MAD_S3_ACCESS_KEY_ID", &key_id)
            .env("MAD_S3_SECRET_ACCESS_KEY", &secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for bucket in buckets {
            command.arg("--bucket").arg(bucket);
        }
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "starting {}: {e}; run scripts/setup-test-env",
                script.display()
            )
        });
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());

        // moto takes a few seconds to import on a busy machine.
        let (sender, ready) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = sender.send(line);
            stdout
        });
        let line = ready
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the S3 test server did not report READY (got {line:?}); is moto installed? Run \
                 scripts/setup-test-env"
            );
        };
        let stdout = reader.join().unwrap();
        S3Server {
            child,
            io: Mutex::new((stdin, stdout)),
            port,
            key_id,
            secret,
            secrets: tempfile::tempdir().unwrap(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Options reaching `bucket` with the server's credentials.
    pub fn options(&self, bucket: &str) -> S3Options {
        self.options_with(bucket, &self.key_id.clone(), &self.secret.clone())
    }

    /// Options reaching `bucket` with the given credentials.
    pub fn options_with(&self, bucket: &str, key_id: &str, secret: &str) -> S3Options {
        S3Options::new(bucket)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_keys(
                secret_file(self.secrets.path(), key_id),
                secret_file(self.secrets.path(), secret),
            )
            .with_timeout_secs(30)
    }

    fn command(&self, line: &str) -> serde_json::Value {
        let mut io = self.io.lock().unwrap();
        let (stdin, stdout) = &mut *io;
        let stdin = stdin.as_mut().expect("the server's input is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        let value: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("the S3 test server answered {answer:?}: {e}"));
        assert!(value.get("error").is_none(), "{line}: {value}");
        value
    }

    /// Every object in `bucket`, sorted by key, read with boto3.
    pub fn objects(&self, bucket: &str) -> Vec<Object> {
        let listed = self.command(&format!("LIST {bucket}"));
        let mut objects: Vec<Object> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|o| Object {
                key: o["key"].as_str().unwrap().to_string(),
                bytes: from_hex(o["hex"].as_str().unwrap()),
                sha256: o["sha256"].as_str().unwrap().to_string(),
                content_type: o["content_type"].as_str().map(str::to_string),
                sse: o["sse"].as_str().map(str::to_string),
                metadata: o["metadata"].as_object().cloned().unwrap_or_default(),
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects
    }

    /// Cuts the next `count` uploads off halfway, after letting `skip` through.
    pub fn drop_uploads(&self, count: u32, skip: u32) {
        self.command(&format!("DROP {count} {skip}"));
    }

    /// Answers the next `count` uploads with 429 and `Retry-After: seconds`.
    pub fn throttle_uploads(&self, count: u32, seconds: u32) {
        self.command(&format!("THROTTLE {count} {seconds}"));
    }

    /// (forwarded, dropped, throttled) uploads so far.
    pub fn stats(&self) -> (u64, u64, u64) {
        let stats = self.command("STATS");
        let n = |k: &str| stats[k].as_u64().unwrap();
        (n("forwarded"), n("dropped"), n("throttled"))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Ok(mut io) = self.io.lock() {
            drop(io.0.take());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
