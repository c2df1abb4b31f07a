//! `mad-qlik-double`: the Qlik engine test double as a process, for tests outside Rust.
//!
//! Prints `READY <port>` once it listens on 127.0.0.1 and exits when its standard input closes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mad_qlik_double::{App, Auth, QlikDouble, User};
use tokio::io::AsyncReadExt;

const USAGE: &str = "usage: mad-qlik-double [--port N] --app ID=FILE.csv|FILE.qvd [--app ...]
  [--tls [--ca-out FILE]] [--virtual-proxy PREFIX] [--session-ttl SECONDS]
  [--api-key-user USER]      API-key auth; the key is read from MAD_QLIK_DOUBLE_API_KEY
  [--header-auth HEADER]     virtual-proxy header auth (directory DOUBLE)
  [--client-cert-out DIR]    client-certificate auth (needs --tls); writes root.pem,
                             client.pem and client_key.pem into DIR";

struct Options {
    port: u16,
    apps: Vec<(String, PathBuf)>,
    tls: bool,
    ca_out: Option<PathBuf>,
    virtual_proxy: Option<String>,
    session_ttl: u64,
    api_key_user: Option<String>,
    header_auth: Option<String>,
    client_cert_out: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        apps: Vec::new(),
        tls: false,
        ca_out: None,
        virtual_proxy: None,
        session_ttl: 0,
        api_key_user: None,
        header_auth: None,
        client_cert_out: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => options.port = value()?.parse().map_err(|_| "--port needs a number")?,
            "--app" => {
                let v = value()?;
                let (id, path) = v.split_once('=').ok_or("--app takes ID=FILE")?;
                options.apps.push((id.to_string(), PathBuf::from(path)));
            }
            "--tls" => options.tls = true,
            "--ca-out" => options.ca_out = Some(PathBuf::from(value()?)),
            "--virtual-proxy" => options.virtual_proxy = Some(value()?),
            "--session-ttl" => {
                options.session_ttl = value()?
                    .parse()
                    .map_err(|_| "--session-ttl needs seconds")?
            }
            "--api-key-user" => options.api_key_user = Some(value()?),
            "--header-auth" => options.header_auth = Some(value()?),
            "--client-cert-out" => options.client_cert_out = Some(PathBuf::from(value()?)),
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(options)
}

async fn run(options: Options) -> Result<(), String> {
    let mut builder = QlikDouble::builder()
        .port(options.port)
        .session_ttl(Duration::from_secs(options.session_ttl));
    for (id, path) in &options.apps {
        builder = builder.app(App::from_file(id, path).map_err(|e| e.to_string())?);
    }
    if options.tls {
        builder = builder.tls();
    }
    if let Some(prefix) = &options.virtual_proxy {
        builder = builder.virtual_proxy(prefix);
    }
    if let Some(user) = &options.api_key_user {
        let key = std::env::var("MAD_QLIK_DOUBLE_API_KEY")
            .map_err(|_| "--api-key-user needs the key in MAD_QLIK_DOUBLE_API_KEY")?;
        builder = builder.auth(Auth::api_key(key, User::new("", user)));
    }
    if let Some(header) = &options.header_auth {
        builder = builder.auth(Auth::header(header, "DOUBLE"));
    }
    if options.client_cert_out.is_some() {
        builder = builder.auth(Auth::ClientCertificate);
    }
    let double = builder.start().await.map_err(|e| e.to_string())?;

    if let (Some(path), Some(pem)) = (&options.ca_out, double.ca_pem()) {
        std::fs::write(path, pem).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(dir) = &options.client_cert_out {
        let client = double
            .issue_client_certificate("mad-test-client")
            .map_err(|e| e.to_string())?;
        let files = [
            ("root.pem", double.ca_pem().unwrap_or_default()),
            ("client.pem", client.cert_pem.clone()),
            ("client_key.pem", client.key_pem.expose().to_string()),
        ];
        for (name, content) in files {
            let path = dir.join(name);
            std::fs::write(&path, content)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
    }

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "READY {}", double.port()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    drop(stdout);

    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    while stdin.read(&mut buf).await.map_err(|e| e.to_string())? > 0 {}
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|options| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(run(options))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "mad-qlik-double: {message}");
            ExitCode::FAILURE
        }
    }
}
