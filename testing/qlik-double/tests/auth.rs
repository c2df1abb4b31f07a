//! Handshake authentication: each mode accepts the right credentials and refuses the rest
//! with HTTP 401/403 before the upgrade.

mod common;

use common::*;
use mad_qlik_double::{Auth, QlikDouble, User};
use serde_json::json;

/// A throwaway credential made at test time.
fn throwaway(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{label}-{nanos:x}-{}", std::process::id())
}

#[tokio::test]
async fn api_keys_are_checked() {
    let key = throwaway("key");
    let double = QlikDouble::builder()
        .app(superstore())
        .auth(Auth::api_key(key.clone(), User::new("QLIKCLOUD", "alice")))
        .tls()
        .start()
        .await
        .unwrap();
    let url = double.app_url("superstore");
    assert!(url.starts_with("wss://"));
    let tls = Connect::default().tls(double.ca_pem().unwrap());

    assert_eq!(
        try_connect(double.addr(), &url, &tls).await.err(),
        Some(401)
    );
    let wrong = tls.clone().header("Authorization", "Bearer not-the-key");
    assert_eq!(
        try_connect(double.addr(), &url, &wrong).await.err(),
        Some(401)
    );
    let right = tls
        .clone()
        .header("Authorization", &format!("Bearer {key}"));
    let mut client = try_connect(double.addr(), &url, &right).await.unwrap();
    assert_eq!(client.frame().await["method"], "OnConnected");
    let user = client.ok(-1, "GetAuthenticatedUser", json!([])).await;
    assert_eq!(user["qReturn"], "UserDirectory=QLIKCLOUD; UserId=alice");
    assert_eq!(double.sessions()[0].user, "QLIKCLOUD\\alice");
    assert_eq!(double.handshakes_refused(), 2);
    assert!(
        !format!("{double:?}").contains(&key),
        "the key stays out of Debug output"
    );
}

#[tokio::test]
async fn client_certificates_and_the_qlik_user_header_are_required() {
    let double = QlikDouble::builder()
        .app(superstore())
        .auth(Auth::ClientCertificate)
        .tls()
        .start()
        .await
        .unwrap();
    let url = double.app_url("superstore");
    let ca = double.ca_pem().unwrap();
    let cert = double.issue_client_certificate("reporting").unwrap();
    assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
    let header = ("X-Qlik-User", "UserDirectory=INTERNAL; UserId=sa_engine");

    let no_cert = Connect::default()
        .tls(ca.clone())
        .header(header.0, header.1);
    assert_eq!(
        try_connect(double.addr(), &url, &no_cert).await.err(),
        Some(401)
    );
    let no_header = Connect::default().tls(ca.clone()).client_cert(cert.clone());
    assert_eq!(
        try_connect(double.addr(), &url, &no_header).await.err(),
        Some(403)
    );
    let good = no_header.clone().header(header.0, header.1);
    let mut client = try_connect(double.addr(), &url, &good).await.unwrap();
    client.frame().await;
    let user = client.ok(-1, "GetAuthenticatedUser", json!([])).await;
    assert_eq!(user["qReturn"], "UserDirectory=INTERNAL; UserId=sa_engine");

    // A certificate from another CA fails the TLS handshake itself.
    let other = QlikDouble::builder()
        .tls()
        .auth(Auth::ClientCertificate)
        .start()
        .await
        .unwrap();
    let foreign = other.issue_client_certificate("intruder").unwrap();
    let bad = Connect::default()
        .tls(ca)
        .client_cert(foreign)
        .header(header.0, header.1);
    assert_eq!(try_connect(double.addr(), &url, &bad).await.err(), Some(0));

    let plain = QlikDouble::builder()
        .auth(Auth::ClientCertificate)
        .start()
        .await;
    assert!(plain.unwrap_err().to_string().contains("TLS"));
}

#[tokio::test]
async fn header_authentication_through_a_virtual_proxy() {
    let double = QlikDouble::builder()
        .app(superstore())
        .virtual_proxy("hdr")
        .auth(Auth::header("X-Qlik-User-Header", "CORP"))
        .start()
        .await
        .unwrap();
    let url = double.app_url("superstore");
    assert!(url.contains("/hdr/app/superstore"), "{url}");

    assert_eq!(
        try_connect(double.addr(), &url, &Connect::default())
            .await
            .err(),
        Some(401)
    );
    let without_prefix = url.replace("/hdr", "");
    let as_bob = Connect::default().header("X-Qlik-User-Header", "bob");
    assert_eq!(
        try_connect(double.addr(), &without_prefix, &as_bob)
            .await
            .err(),
        Some(404)
    );
    let mut client = try_connect(double.addr(), &url, &as_bob).await.unwrap();
    let first = client.frame().await;
    assert_eq!(
        first,
        json!({"jsonrpc":"2.0","method":"OnAuthenticationInformation","params":{"userId":"bob","userDirectory":"CORP","mustAuthenticate":false}})
    );
    assert_eq!(
        client.frame().await["params"]["qSessionState"],
        "SESSION_CREATED"
    );
    assert_eq!(double.sessions()[0].user, "CORP\\bob");
}

#[tokio::test]
async fn session_cookie_and_csrf_token() {
    let login = throwaway("jwt");
    let double = QlikDouble::builder()
        .app(superstore())
        .virtual_proxy("jwt")
        .auth(Auth::session_cookie(
            login.clone(),
            User::new("CORP", "carol"),
        ))
        .start()
        .await
        .unwrap();
    let addr = double.addr();
    let (status, _, _) = http_get(addr, "/jwt/qps/csrftoken", &[]).await;
    assert_eq!(status, 401);
    let bearer = format!("Bearer {login}");
    let (status, headers, _) =
        http_get(addr, "/jwt/qps/csrftoken", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200);
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let token = find("qlik-csrf-token").expect("a CSRF token header");
    let cookie = find("Set-Cookie").expect("a session cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("X-Qlik-Session="), "{cookie}");

    let url = double.app_url("superstore");
    let with_token = format!("{url}?qlik-csrf-token={token}");
    let no_cookie = Connect::default();
    assert_eq!(
        try_connect(addr, &with_token, &no_cookie).await.err(),
        Some(401)
    );
    let cookie_only = Connect::default().header("Cookie", &cookie);
    assert_eq!(try_connect(addr, &url, &cookie_only).await.err(), Some(403));
    let wrong_token = format!("{url}?qlik-csrf-token=x{token}");
    assert_eq!(
        try_connect(addr, &wrong_token, &cookie_only).await.err(),
        Some(403)
    );
    let with_bearer = cookie_only.clone().header("Authorization", &bearer);
    assert_eq!(
        try_connect(addr, &with_token, &with_bearer).await.err(),
        Some(403)
    );

    let mut client = try_connect(addr, &with_token, &cookie_only).await.unwrap();
    assert_eq!(
        client.frame().await["method"],
        "OnAuthenticationInformation"
    );
    assert_eq!(client.frame().await["method"], "OnConnected");
    client.open("superstore").await;
    assert_eq!(double.sessions()[0].user, "CORP\\carol");
}
