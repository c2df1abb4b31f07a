//! Every authentication mode with good and bad credentials, per-recipient identities, and
//! secrets kept out of Debug output and error messages.

mod common;

use common::*;
use mad_core::{DataSource, ErrorKind, FetchRequest, Filter, FilterSet, Query};
use mad_qlik::engine::{QlikAuth, QlikOptions, QlikSource};
use mad_qlik_double::{Auth, QlikDouble, SectionAccess, User};

fn regions() -> Query {
    Query::fields(["Region"])
}

async fn regions_as(source: &QlikSource, identity: Option<&str>) -> mad_core::Result<Vec<String>> {
    let query = regions();
    let all = FilterSet::all();
    let mut request = FetchRequest::new(&query, &all);
    if let Some(identity) = identity {
        request = request.with_identity(identity);
    }
    let table = source.fetch(request).await?;
    let mut regions = texts(&table, 0);
    regions.sort();
    Ok(regions)
}

#[tokio::test]
async fn api_key_good_bad_and_no_identity() {
    let key = throwaway_secret("key");
    let auth = Auth::api_key(key.clone(), User::new("", "alice"));
    let engine = Engine::start(QlikDouble::builder().app(superstore_app()).auth(auth)).await;

    let good = secret_file(engine.dir.path(), "good.key", &key);
    let source = engine.source(engine.options("superstore", QlikAuth::ApiKey { api_key: good }));
    assert_eq!(regions_as(&source, None).await.unwrap().len(), 4);
    assert!(!format!("{source:?}").contains(&key), "Debug shows the key");

    let err = regions_as(&source, Some("bob")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(!source.capabilities().identity);

    let wrong = throwaway_secret("wrong");
    let bad = secret_file(engine.dir.path(), "bad.key", &wrong);
    let source = engine.source(engine.options("superstore", QlikAuth::ApiKey { api_key: bad }));
    let err = regions_as(&source, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains(&wrong) && !format!("{err:?}").contains(&wrong));
    assert!(engine.double.handshakes_refused() >= 1);
    engine.assert_no_violations();
}

#[tokio::test]
async fn client_certificate_good_bad_and_identities() {
    let access = SectionAccess::new("Region")
        .allow("CORP\\alice", ["East"])
        .allow("bob", ["West", "South"]);
    let app = superstore_app().with_section_access(access);
    let engine = Engine::start(QlikDouble::builder().app(app).auth(Auth::ClientCertificate)).await;
    let issued = engine.double.issue_client_certificate("mad").unwrap();
    let cert = engine.path("client.pem");
    let key = engine.path("client_key.pem");
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.expose()).unwrap();
    let auth = QlikAuth::Certificate {
        cert: cert.clone(),
        key: key.clone(),
        root: Some(engine.ca.clone()),
        user_directory: "CORP".into(),
        user_id: "alice".into(),
    };
    let mut options = engine.options("superstore", auth.clone());
    options.ca_file = None;
    let source = engine.source(options);
    assert!(source.capabilities().identity);
    assert_eq!(regions_as(&source, None).await.unwrap(), ["East"]);
    assert_eq!(
        regions_as(&source, Some("bob")).await.unwrap(),
        ["South", "West"]
    );
    assert_eq!(
        regions_as(&source, Some("CORP\\alice")).await.unwrap(),
        ["East"]
    );
    let err = regions_as(&source, Some("mallory")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!format!("{source:?}").contains(issued.key_pem.expose()));

    // A certificate from another CA is refused at the handshake.
    let stranger = Engine::start(QlikDouble::builder().auth(Auth::ClientCertificate)).await;
    let foreign = stranger
        .double
        .issue_client_certificate("stranger")
        .unwrap();
    std::fs::write(&cert, &foreign.cert_pem).unwrap();
    std::fs::write(&key, foreign.key_pem.expose()).unwrap();
    let source = engine.source(engine.options("superstore", auth));
    let err = regions_as(&source, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    engine.assert_no_violations();
}

#[tokio::test]
async fn header_authentication_good_bad_and_identities() {
    let access = SectionAccess::new("Region")
        .allow("alice", ["Central"])
        .allow("bob", ["East"]);
    let app = superstore_app().with_section_access(access);
    let builder = QlikDouble::builder()
        .app(app)
        .auth(Auth::header("X-Mad-User", "DOUBLE"))
        .virtual_proxy("hdr");
    let engine = Engine::start(builder).await;
    let url = format!("{}/hdr", engine.url());
    let auth = QlikAuth::Header {
        header: "X-Mad-User".into(),
        user: "alice".into(),
        csrf_token: false,
    };
    let mut options = engine.options("superstore", auth);
    options.url = url.clone();
    let source = engine.source(options.clone());
    assert_eq!(regions_as(&source, None).await.unwrap(), ["Central"]);
    assert_eq!(regions_as(&source, Some("bob")).await.unwrap(), ["East"]);

    options.auth = QlikAuth::Header {
        header: "X-Other-Header".into(),
        user: "alice".into(),
        csrf_token: false,
    };
    let err = regions_as(&engine.source(options.clone()), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");

    options.url = engine.url();
    let err = regions_as(&engine.source(options), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "without the prefix: {err}");
    engine.assert_no_violations();
}

#[tokio::test]
async fn an_identity_the_proxy_ignores_is_refused_not_served_as_another_user() {
    let access = SectionAccess::new("Region")
        .allow("alice", ["Central"])
        .allow("bob", ["East"])
        .allow("anonymous", ["Central", "East", "South", "West"]);
    let app = superstore_app().with_section_access(access);
    let builder = QlikDouble::builder()
        .app(app)
        .auth(Auth::header("X-Mad-User", "DOUBLE"))
        .virtual_proxy("hdr");
    let engine = Engine::start(builder).await;
    let mut options = engine.options(
        "superstore",
        QlikAuth::Header {
            header: "X-Mad-User".into(),
            user: "alice".into(),
            csrf_token: false,
        },
    );
    options.url = format!("{}/hdr", engine.url());
    let source = engine.source(options);
    assert_eq!(regions_as(&source, Some("bob")).await.unwrap(), ["East"]);

    engine
        .double
        .serve_everyone_as(Some(User::new("", "anonymous")));
    let err = regions_as(&source, Some("carol")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("carol"), "{err}");
    assert!(err.to_string().contains("anonymous"), "{err}");
    let opened = engine.double.request_count("OpenDoc");
    let err = regions_as(&source, Some("DOUBLE\\dave")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(
        engine.double.request_count("OpenDoc"),
        opened,
        "the app was never opened for a session served as someone else"
    );
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_certificate_identity_served_as_another_directory_is_refused() {
    let access = SectionAccess::new("Region")
        .allow("CORP\\bob", ["East"])
        .allow("OTHER\\bob", ["Central", "East", "South", "West"]);
    let app = superstore_app().with_section_access(access);
    let engine = Engine::start(QlikDouble::builder().app(app).auth(Auth::ClientCertificate)).await;
    let issued = engine.double.issue_client_certificate("mad").unwrap();
    let (cert, key) = (engine.path("client.pem"), engine.path("client_key.pem"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.expose()).unwrap();
    let auth = QlikAuth::Certificate {
        cert,
        key,
        root: Some(engine.ca.clone()),
        user_directory: "CORP".into(),
        user_id: "svc".into(),
    };
    let options = engine.options("superstore", auth);
    let source = engine.source(options.clone());
    assert_eq!(regions_as(&source, Some("bob")).await.unwrap(), ["East"]);

    engine
        .double
        .serve_everyone_as(Some(User::new("OTHER", "bob")));
    let fresh = engine.source(options);
    let err = regions_as(&fresh, Some("bob")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    engine.assert_no_violations();
}

#[tokio::test]
async fn a_blank_identity_is_refused_not_served_as_the_source_user() {
    let access = SectionAccess::new("Region").allow("alice", ["Central"]);
    let app = superstore_app().with_section_access(access);
    let builder = QlikDouble::builder()
        .app(app)
        .auth(Auth::header("X-Mad-User", "DOUBLE"))
        .virtual_proxy("hdr");
    let engine = Engine::start(builder).await;
    let auth = QlikAuth::Header {
        header: "X-Mad-User".into(),
        user: "alice".into(),
        csrf_token: false,
    };
    let mut options = engine.options("superstore", auth);
    options.url = format!("{}/hdr", engine.url());
    let source = engine.source(options);
    assert_eq!(regions_as(&source, None).await.unwrap(), ["Central"]);
    assert_eq!(
        source.idle_sessions(),
        1,
        "the user's session waits for reuse"
    );

    for blank in ["", "  "] {
        let err = regions_as(&source, Some(blank)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{blank:?}: {err}");
        assert!(err.to_string().contains("identity is blank"), "{err}");
    }
    engine.assert_no_violations();
}

#[tokio::test]
async fn session_cookie_login_good_and_bad() {
    let login = throwaway_secret("jwt");
    let auth = Auth::session_cookie(login.clone(), User::new("CORP", "carol"));
    let builder = QlikDouble::builder()
        .app(superstore_app())
        .auth(auth)
        .virtual_proxy("jwt");
    let engine = Engine::start(builder).await;
    let mut options = engine.options(
        "superstore",
        QlikAuth::SessionCookie {
            login: secret_file(engine.dir.path(), "login", &login),
            cookie: "X-Qlik-Session".into(),
        },
    );
    options.url = format!("{}/jwt", engine.url());
    let source = engine.source(options.clone());
    assert_eq!(regions_as(&source, None).await.unwrap().len(), 4);
    let err = regions_as(&source, Some("dave")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(!format!("{source:?}").contains(&login));

    let wrong = throwaway_secret("wrong-jwt");
    options.auth = QlikAuth::SessionCookie {
        login: secret_file(engine.dir.path(), "wrong", &wrong),
        cookie: "X-Qlik-Session".into(),
    };
    let err = regions_as(&engine.source(options), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains(&wrong));
    engine.assert_no_violations();
}

#[tokio::test]
async fn no_authentication_refuses_identities_and_windows_is_unsupported() {
    let engine = Engine::start(QlikDouble::builder().app(superstore_app())).await;
    let source = engine.source(engine.options("superstore", QlikAuth::None));
    let err = regions_as(&source, Some("alice")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);

    let windows = engine.options("superstore", QlikAuth::Windows { user: None });
    let err = QlikSource::new(windows).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(
        err.to_string().contains("header") && err.to_string().contains("certificate"),
        "{err}"
    );
    engine.assert_no_violations();
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused_unless_told_otherwise() {
    let engine = Engine::start(QlikDouble::builder().app(superstore_app())).await;
    let mut options = engine.options("superstore", QlikAuth::None);
    options.ca_file = None;
    let err = regions_as(&engine.source(options.clone()), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("ca_file"), "{err}");

    options.accept_invalid_certs_dangerous = true;
    assert_eq!(
        regions_as(&engine.source(options), None)
            .await
            .unwrap()
            .len(),
        4
    );

    let filters = FilterSet::from_filters([Filter::new("Region", ["East"])]);
    let source = engine.source(engine.options("superstore", QlikAuth::None));
    let table = fetch(&source, &regions(), &filters).await.unwrap();
    assert_eq!(texts(&table, 0), ["East"]);
    engine.assert_no_violations();
}

/// A CSRF-protected header proxy on the prefix `hdr` that accepts sockets only from
/// `https://reports.example`, with alice seeing Central and bob East.
async fn csrf_protected_header_proxy() -> Engine {
    let access = SectionAccess::new("Region")
        .allow("alice", ["Central"])
        .allow("bob", ["East"]);
    let auth = Auth::header("X-Mad-User", "DOUBLE")
        .with_csrf_token("X-Qlik-Session-hdr")
        .with_allowed_origins(["https://reports.example"]);
    let builder = QlikDouble::builder()
        .app(superstore_app().with_section_access(access))
        .auth(auth)
        .virtual_proxy("hdr");
    Engine::start(builder).await
}

fn header_options(engine: &Engine, csrf_token: bool, origin: Option<&str>) -> QlikOptions {
    let auth = QlikAuth::Header {
        header: "X-Mad-User".into(),
        user: "alice".into(),
        csrf_token,
    };
    let mut options = engine.options("superstore", auth);
    options.url = format!("{}/hdr", engine.url());
    options.origin = origin.map(str::to_string);
    options
}

#[tokio::test]
async fn header_authentication_through_a_csrf_protected_proxy() {
    let engine = csrf_protected_header_proxy().await;
    let good = engine.source(header_options(
        &engine,
        true,
        Some("https://reports.example"),
    ));
    assert_eq!(regions_as(&good, None).await.unwrap(), ["Central"]);
    assert_eq!(
        regions_as(&good, Some("bob")).await.unwrap(),
        ["East"],
        "each identity has its own proxy session"
    );
    assert_eq!(regions_as(&good, None).await.unwrap(), ["Central"]);

    let without_token = engine.source(header_options(
        &engine,
        false,
        Some("https://reports.example"),
    ));
    let err = regions_as(&without_token, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");

    let without_origin = engine.source(header_options(&engine, true, None));
    let err = regions_as(&without_origin, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    let other_origin = engine.source(header_options(
        &engine,
        true,
        Some("https://elsewhere.example"),
    ));
    let err = regions_as(&other_origin, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    assert_eq!(engine.double.handshakes_refused(), 3);
    engine.assert_no_violations();
}

#[tokio::test]
async fn an_origin_is_sent_only_when_configured() {
    let auth =
        Auth::header("X-Mad-User", "DOUBLE").with_allowed_origins(["https://reports.example"]);
    let builder = QlikDouble::builder()
        .app(superstore_app())
        .auth(auth)
        .virtual_proxy("hdr");
    let engine = Engine::start(builder).await;

    let plain = engine.source(header_options(&engine, false, None));
    let err = regions_as(&plain, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    let with_origin = engine.source(header_options(
        &engine,
        false,
        Some("https://reports.example"),
    ));
    assert_eq!(regions_as(&with_origin, None).await.unwrap().len(), 4);
    engine.assert_no_violations();
}
