//! Test servers for the FTP and SFTP channels, all on 127.0.0.1 and started by the tests: the
//! FTP server of `testing/servers/ftp.py` (pyftpdlib), OpenSSH's sshd with keys generated per
//! test, an in-process SSH server with password logins that hands SFTP to OpenSSH's
//! `sftp-server`, and a proxy that cuts connections part-way.
#![allow(dead_code)] // each test file uses its own part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mad_core::{Delivery, OutputFormat};
use mad_deliver::ftp::{FtpChannel, FtpOptions, Security};
use mad_deliver::sftp::SftpOptions;

use crate::conformance::Arrived;
use crate::support::{
    TestCertificates, delivery, document, pdf_bytes, python, recipient, repo_root, secret_file,
    throwaway,
};

/// A delivery of one PDF named `name` to the recipient `id`.
pub fn pdf_delivery(id: &str, name: &str) -> Delivery {
    delivery(
        recipient(id),
        vec![document(OutputFormat::Pdf, name, pdf_bytes())],
    )
}

/// A document large enough that a transfer can be cut in the middle.
pub fn big_bytes() -> Vec<u8> {
    (0..2_000_000u32).map(|i| (i % 251) as u8).collect()
}

/// Every file below `dir` as it arrived, keyed by its path relative to `dir`.
pub fn arrived_below(dir: &Path) -> Vec<(String, Arrived)> {
    files_below(dir)
        .into_iter()
        .map(|rel| {
            let arrived = Arrived {
                name: rel.rsplit('/').next().unwrap().to_string(),
                bytes: std::fs::read(dir.join(&rel)).unwrap(),
            };
            (rel, arrived)
        })
        .collect()
}

/// Every file below `dir`, as `/`-separated paths relative to it, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap();
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Temporary upload files left below `dir`.
pub fn temporary_files(dir: &Path) -> Vec<String> {
    files_below(dir)
        .into_iter()
        .filter(|p| p.rsplit('/').next().unwrap().ends_with(".tmp"))
        .collect()
}

// ---- FTP ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtpMode {
    Plain,
    ExplicitTls,
}

pub struct FtpConfig<'a> {
    pub mode: FtpMode,
    pub certificates: Option<&'a TestCertificates>,
    pub user: &'a str,
    pub password: &'a str,
    /// Cut the data connection of the first `drop_count` uploads after this many bytes.
    pub drop_after: u64,
    pub drop_count: u32,
    /// Refuse this many logins first, whatever the credentials.
    pub reject_logins: u32,
}

/// The FTP server of `testing/servers/ftp.py`, running until dropped.
pub struct FtpServer {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
    pub root: tempfile::TempDir,
    events: tempfile::NamedTempFile,
}

impl FtpServer {
    pub fn start(config: FtpConfig<'_>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let events = tempfile::NamedTempFile::new().unwrap();
        let script = repo_root().join("testing/servers/ftp.py");
        let mut command = Command::new(python());
        command
            .arg(&script)
            .arg("--mode")
            .arg(match config.mode {
                FtpMode::Plain => "plain",
                FtpMode::ExplicitTls => "explicit_tls",
            })
            .arg("--root")
            .arg(root.path())
            .arg("--events")
            .arg(events.path())
            .arg("--drop-data-after")
            .arg(config.drop_after.to_string())
            .arg("--drop-count")
            .arg(config.drop_count.to_string())
            .arg("--reject-logins")
            .arg(config.reject_logins.to_string())
            .env("MAD_FTP_USER", config.user)
            .env("MAD_FTP_PASSWORD", config.password);
        if let Some(certificates) = config.certificates {
            command
                .arg("--cert")
                .arg(&certificates.cert)
                .arg("--key")
                .arg(&certificates.key);
        }
        let (child, stdin, port) = start_ready(command, &script, "pyftpdlib");
        FtpServer {
            child,
            stdin,
            port,
            root,
            events,
        }
    }

    /// How many control connections the server accepted.
    pub fn connections(&self) -> usize {
        std::fs::read_to_string(self.events.path())
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "connect")
            .count()
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server script that prints `READY <port>`, or fails saying how to install it.
fn start_ready(
    mut command: Command,
    script: &Path,
    package: &str,
) -> (Child, Option<ChildStdin>, u16) {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "starting {}: {e}; run scripts/setup-test-env",
            script.display()
        )
    });
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();

    let (sender, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = ready
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    let port = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok());
    let Some(port) = port else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{} did not report READY (got {line:?}); is {package} installed? Run \
             scripts/setup-test-env",
            script.display()
        );
    };
    (child, stdin, port)
}

// ---- SSH keys -------------------------------------------------------------------------------

/// A key pair made by `ssh-keygen` in `dir`.
pub struct KeyPair {
    pub private: PathBuf,
    pub public_line: String,
}

impl KeyPair {
    pub fn generate(dir: &Path, name: &str, passphrase: &str) -> Self {
        let private = dir.join(name);
        let status = Command::new("ssh-keygen")
            .args([
                "-q", "-t", "ed25519", "-C", "mad-test", "-N", passphrase, "-f",
            ])
            .arg(&private)
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running ssh-keygen: {e}; run scripts/setup-test-env"));
        assert!(status.success(), "ssh-keygen failed");
        let public_line = std::fs::read_to_string(private.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string();
        KeyPair {
            private,
            public_line,
        }
    }

    /// The `known_hosts` line that lists this key for 127.0.0.1 at `port`.
    pub fn known_hosts_line(&self, port: u16) -> String {
        let mut parts = self.public_line.split_whitespace();
        let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
        format!("[127.0.0.1]:{port} {kind} {key}")
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- sshd -----------------------------------------------------------------------------------

const SSHD: &str = "/usr/sbin/sshd";

/// OpenSSH's sshd on a free port, logging in the current user with a key made for the test and
/// offering only SFTP.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub host_key: KeyPair,
    pub client_key: KeyPair,
    pub user: String,
    /// The folder the files land in, as the test reads it.
    pub root: tempfile::TempDir,
    /// The same folder as the SFTP client sees it (`/` when sshd locks the user into it).
    pub remote_root: String,
    _config: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: run scripts/setup-test-env (it installs openssh-server)"
        );
        let config_dir = tempfile::tempdir().unwrap();
        let host_key = KeyPair::generate(config_dir.path(), "host_key", "");
        let client_key = KeyPair::generate(config_dir.path(), "client_key", "");
        std::fs::write(
            config_dir.path().join("authorized_keys"),
            format!("{}\n", client_key.public_line),
        )
        .unwrap();
        let user = current_user();

        // sshd locks the user into the folder when every folder above it is root's and not
        // writable by others, as it demands; otherwise the user sees the whole file system.
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let chroot = is_root() && chroot_allowed(root.path());
        let remote_root = if chroot {
            "/".to_string()
        } else {
            root.path().display().to_string()
        };
        if is_root() {
            // sshd refuses to start as root without its privilege separation folder, which
            // the system normally creates when the ssh service starts.
            std::fs::create_dir_all("/run/sshd").unwrap();
        }

        let dir = config_dir.path().display().to_string();
        let port = free_port();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nX11Forwarding no\n\
             AllowTcpForwarding no\nSubsystem sftp internal-sftp\nForceCommand internal-sftp\n\
             LogLevel FATAL\n"
        );
        if chroot {
            config.push_str(&format!("ChrootDirectory {}\n", root.path().display()));
        }
        let config_path = config_dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap();

        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting sshd: {e}; run scripts/setup-test-env"));
        let mut sshd = Sshd {
            child,
            port,
            host_key,
            client_key,
            user,
            root,
            remote_root,
            _config: config_dir,
        };
        sshd.wait_until_listening();
        sshd
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd stopped at once ({status}); see its messages above");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd did not listen on port {} in time", self.port);
    }

    /// A `known_hosts` file listing this server's key.
    pub fn known_hosts(&self, dir: &Path) -> PathBuf {
        let path = dir.join("known_hosts");
        std::fs::write(
            &path,
            format!("{}\n", self.host_key.known_hosts_line(self.port)),
        )
        .unwrap();
        path
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

#[cfg(unix)]
fn chroot_allowed(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors()
        .all(|p| std::fs::metadata(p).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0))
}

#[cfg(not(unix))]
fn chroot_allowed(_dir: &Path) -> bool {
    false
}

// ---- an SSH server with password logins -----------------------------------------------------

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// An SSH server in this process that accepts one user name and password, and serves SFTP by
/// handing the channel to OpenSSH's `sftp-server`. sshd itself would check passwords against
/// the system's accounts, which a test cannot create.
pub struct PasswordSshServer {
    pub port: u16,
    pub host_key: KeyPair,
    pub root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
    _keys: tempfile::TempDir,
}

impl PasswordSshServer {
    pub async fn start(user: &str, password: &str) -> Self {
        PasswordSshServer::start_refusing(user, password, 0).await
    }

    /// A server that refuses the first `refusals` logins, whatever the password.
    pub async fn start_refusing(user: &str, password: &str, refusals: usize) -> Self {
        use russh::server::{Config, run_stream};

        assert!(
            Path::new(SFTP_SERVER).exists(),
            "{SFTP_SERVER} is missing: run scripts/setup-test-env (it installs openssh-server)"
        );
        let keys = tempfile::tempdir().unwrap();
        let host_key = KeyPair::generate(keys.path(), "host_key", "");
        let key = russh::keys::load_secret_key(&host_key.private, None).unwrap();
        let config = Arc::new(Config {
            keys: vec![key],
            auth_rejection_time: Duration::from_millis(50),
            auth_rejection_time_initial: Some(Duration::ZERO),
            ..Config::default()
        });
        let root = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handler = PasswordHandler {
            user: user.to_string(),
            password: password.to_string(),
            root: root.path().to_path_buf(),
            refusals: Arc::new(AtomicUsize::new(refusals)),
            channels: Default::default(),
        };

        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let config = Arc::clone(&config);
                // Channel ids are per connection, so each gets its own table of channels.
                let handler = PasswordHandler {
                    channels: Default::default(),
                    ..handler.clone()
                };
                tokio::spawn(async move {
                    if let Ok(session) = run_stream(config, socket, handler).await {
                        let _ = session.await;
                    }
                });
            }
        });
        PasswordSshServer {
            port,
            host_key,
            root,
            task,
            _keys: keys,
        }
    }

    pub fn known_hosts(&self, dir: &Path) -> PathBuf {
        let path = dir.join("known_hosts");
        std::fs::write(
            &path,
            format!("{}\n", self.host_key.known_hosts_line(self.port)),
        )
        .unwrap();
        path
    }

    /// Options logging in as `user` with `password` (kept in a file in `secrets`) into
    /// `{root}/{recipient.id}`, the host key listed in a known_hosts file.
    pub fn options(&self, user: &str, password: &str, secrets: &Path) -> SftpOptions {
        SftpOptions::new("127.0.0.1", user)
            .with_port(self.port)
            .with_password(secret_file(secrets, password))
            .with_known_hosts(self.known_hosts(secrets))
            .with_path(self.root.path().display().to_string())
            .with_subfolder("{recipient.id}")
    }
}

impl Drop for PasswordSshServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct PasswordHandler {
    user: String,
    password: String,
    root: PathBuf,
    refusals: Arc<AtomicUsize>,
    channels: Arc<
        std::sync::Mutex<
            std::collections::HashMap<russh::ChannelId, russh::Channel<russh::server::Msg>>,
        >,
    >,
}

impl russh::server::Handler for PasswordHandler {
    type Error = russh::Error;

    async fn auth_password(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<russh::server::Auth, Self::Error> {
        let refuse = self
            .refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !refuse && user == self.user && password == self.password {
            Ok(russh::server::Auth::Accept)
        } else {
            Ok(russh::server::Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: russh::Channel<russh::server::Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut russh::server::Session,
    ) -> Result<(), Self::Error> {
        self.channels.lock().unwrap().insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: russh::ChannelId,
        name: &str,
        session: &mut russh::server::Session,
    ) -> Result<(), Self::Error> {
        let channel = self.channels.lock().unwrap().remove(&id);
        let Some(channel) = channel.filter(|_| name == "sftp") else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;

        let root = self.root.clone();
        tokio::spawn(async move {
            let mut child = tokio::process::Command::new(SFTP_SERVER)
                .arg("-d")
                .arg(&root)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut to_server = child.stdin.take().unwrap();
            let mut from_server = child.stdout.take().unwrap();
            let (mut from_client, mut to_client) = tokio::io::split(channel.into_stream());
            let upload = async {
                let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                drop(to_server);
            };
            let download = tokio::io::copy(&mut from_server, &mut to_client);
            let _ = tokio::join!(upload, download);
            let _ = child.kill().await;
        });
        Ok(())
    }
}

// ---- a proxy that cuts connections ----------------------------------------------------------

/// Forwards connections on 127.0.0.1 to `target`; the first `cuts` of them are cut once the
/// client has sent `after` bytes, as a failing network would.
pub struct CuttingProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub cut: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
}

impl CuttingProxy {
    pub fn start(target: u16, after: u64, cuts: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stopping, counting, accepting) =
            (Arc::clone(&stop), Arc::clone(&cut), Arc::clone(&accepted));
        std::thread::spawn(move || {
            let mut connections = 0;
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let limit = (connections < cuts).then_some(after);
                connections += 1;
                accepting.fetch_add(1, Ordering::SeqCst);
                forward(client, server, limit, Arc::clone(&counting));
            }
        });
        CuttingProxy {
            port,
            stop,
            cut,
            accepted,
        }
    }

    /// How many connections it forwarded.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn forward(client: TcpStream, server: TcpStream, limit: Option<u64>, cut: Arc<AtomicUsize>) {
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_read, mut c_write) = (server, client);
    let (c_shut, s_shut) = (c_write.try_clone().unwrap(), s_read.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut sent = 0u64;
        let mut buffer = [0u8; 8192];
        loop {
            let n = match c_read.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if limit.is_some_and(|l| sent + n as u64 > l) {
                cut.fetch_add(1, Ordering::SeqCst);
                break;
            }
            sent += n as u64;
            if s_write.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = c_shut.shutdown(Shutdown::Both);
        let _ = s_shut.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s_read, &mut c_write);
        let _ = c_write.shutdown(Shutdown::Both);
    });
}

/// An FTP server, the throwaway credentials it accepts and the CA that signed its certificate.
pub struct FtpFixture {
    pub mode: FtpMode,
    pub certificates: TestCertificates,
    pub secrets: tempfile::TempDir,
    pub user: String,
    pub password: String,
    pub server: FtpServer,
}

impl FtpFixture {
    pub fn start(mode: FtpMode) -> Self {
        FtpFixture::start_with(mode, |_| {})
    }

    pub fn start_with(mode: FtpMode, adjust: impl FnOnce(&mut FtpConfig<'_>)) -> Self {
        let certificates = TestCertificates::generate();
        let user = throwaway("user");
        let password = throwaway("pw");
        let mut config = FtpConfig {
            mode,
            certificates: (mode == FtpMode::ExplicitTls).then_some(&certificates),
            user: &user,
            password: &password,
            drop_after: 0,
            drop_count: 0,
            reject_logins: 0,
        };
        adjust(&mut config);
        let server = FtpServer::start(config);
        std::fs::create_dir(server.root.path().join("reports")).unwrap();
        FtpFixture {
            mode,
            certificates,
            secrets: tempfile::tempdir().unwrap(),
            user,
            password,
            server,
        }
    }

    /// The server's `/reports` folder on disk.
    pub fn reports(&self) -> std::path::PathBuf {
        self.server.root.path().join("reports")
    }

    /// Options for this server with `password`, into `/reports/{recipient.id}`.
    pub fn options(&self, password: &str) -> FtpOptions {
        let options = FtpOptions::new("127.0.0.1", &self.user)
            .with_port(self.server.port)
            .with_password(secret_file(self.secrets.path(), password))
            .with_path("/reports")
            .with_subfolder("{recipient.id}")
            .with_timeout_secs(20);
        match self.mode {
            FtpMode::ExplicitTls => options
                .with_security(Security::ExplicitTls)
                .with_ca_file(&self.certificates.ca),
            FtpMode::Plain => options.with_security(Security::None),
        }
    }

    pub fn channel(&self) -> FtpChannel {
        FtpChannel::new(self.options(&self.password)).unwrap()
    }
}
