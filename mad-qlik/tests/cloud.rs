//! The Qlik Cloud REST client against the local REST double over TLS: apps, items,
//! reloads, reports, rate limits and authentication.

mod common;

use std::time::{Duration, Instant};

use common::throwaway_secret;
use mad_core::{ErrorKind, Filter, FilterSet, Secret};
use mad_qlik::cloud::{CloudClient, ReportRequest};
use mad_qlik_double::CloudDouble;
use tempfile::TempDir;

struct Tenant {
    double: CloudDouble,
    key: String,
    _dir: TempDir,
    ca: std::path::PathBuf,
}

async fn start_tenant(builder: mad_qlik_double::CloudDoubleBuilder) -> Tenant {
    let key = throwaway_secret("api-key");
    let double = builder
        .api_key(key.clone())
        .app("a1", "Sales")
        .app("a2", "Finance")
        .app("a3", "Failing")
        .failing_reload("a3")
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, double.ca_pem()).unwrap();
    Tenant {
        double,
        key,
        _dir: dir,
        ca,
    }
}

impl Tenant {
    fn client(&self) -> CloudClient {
        self.client_with(&self.key)
    }

    fn client_with(&self, key: &str) -> CloudClient {
        CloudClient::builder(self.double.url())
            .with_api_key(Secret::new(key))
            .with_ca_file(&self.ca)
            .with_poll_interval(Duration::from_millis(20))
            .build()
            .unwrap()
    }
}

#[tokio::test]
async fn apps_and_items_are_listed_across_pages() {
    let tenant = start_tenant(CloudDouble::builder()).await;
    let client = tenant.client();
    let app = client.app("a1").await.unwrap();
    assert_eq!(app.name, "Sales");
    let err = client.app("nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let paged = CloudClient::builder(tenant.double.url())
        .with_api_key(Secret::new(&tenant.key))
        .with_ca_file(&tenant.ca)
        .with_page_size(2)
        .build()
        .unwrap();
    let apps = paged.apps().await.unwrap();
    let ids: Vec<&str> = apps.iter().map(|i| i.resource_id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2", "a3"]);
    let pages = tenant
        .double
        .requests()
        .iter()
        .filter(|r| *r == "GET /api/v1/items")
        .count();
    assert_eq!(pages, 2, "the next link was followed");
    let named = client
        .items(&[("resourceType", "app"), ("name", "Finance")])
        .await
        .unwrap();
    assert_eq!(named.len(), 1);
    assert!(
        tenant.double.violations().is_empty(),
        "{:?}",
        tenant.double.violations()
    );
}

#[tokio::test]
async fn a_bad_key_is_unauthenticated_and_never_shown() {
    let tenant = start_tenant(CloudDouble::builder()).await;
    let wrong = throwaway_secret("wrong-key");
    let client = tenant.client_with(&wrong);
    let err = client.apps().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(!format!("{err} {err:?} {client:?}").contains(&wrong));
}

#[tokio::test]
async fn reloads_are_waited_for() {
    let tenant = start_tenant(CloudDouble::builder().reload_steps(3)).await;
    let client = tenant.client();
    let reload = client
        .reload_and_wait("a1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(reload.status, "SUCCEEDED");
    let polls = tenant
        .double
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/reloads/"))
        .count();
    assert_eq!(polls, 4);

    let err = client
        .reload_and_wait("a3", Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataSource);
    assert!(err.to_string().contains("FAILED"), "{err}");

    let slow = start_tenant(CloudDouble::builder().reload_steps(1000)).await;
    let err = slow
        .client()
        .reload_and_wait("a1", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        tenant.double.violations().is_empty(),
        "{:?}",
        tenant.double.violations()
    );
}

#[tokio::test]
async fn a_report_is_created_polled_and_downloaded() {
    let tenant = start_tenant(CloudDouble::builder().report_steps(3)).await;
    let client = tenant.client();
    let filters = FilterSet::from_filters([
        Filter::new("Region", ["East"]),
        Filter::new("Year", ["2024"]),
    ]);
    let request = ReportRequest::sense_sheet_pdf("a1", "sheet-1", "regional")
        .with_selections(&filters)
        .unwrap();
    let files = client
        .generate_report(&request, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    let (id, bytes) = &files[0];
    assert_eq!(id, "regional");
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(String::from_utf8_lossy(bytes).contains("\"fieldName\":\"Region\""));

    let xlsx = ReportRequest::sense_data("a1", "chart-1", "data");
    let files = client
        .generate_report(&xlsx, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(files[0].1.starts_with(b"PK"));
    let png = ReportRequest::sense_image_png("a1", "chart-1", "picture", 800, 600);
    assert_eq!(
        client
            .generate_report(&png, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(tenant.double.reports().len(), 3);
    assert!(
        tenant.double.violations().is_empty(),
        "{:?}",
        tenant.double.violations()
    );
}

#[tokio::test]
async fn report_selections_fail_on_errors_instead_of_being_dropped() {
    let tenant = start_tenant(CloudDouble::builder().report_steps(0)).await;
    let filters = FilterSet::from_filters([Filter::new("Region", ["East"])]);
    for request in [
        ReportRequest::sense_sheet_pdf("a1", "sheet-1", "sheet"),
        ReportRequest::sense_data("a1", "chart-1", "data"),
        ReportRequest::sense_image_png("a1", "chart-1", "picture", 800, 600),
    ] {
        let request = request.with_selections(&filters).unwrap();
        tenant.client().create_report(&request).await.unwrap();
    }
    for body in tenant.double.reports() {
        let template = body
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.ends_with("Template"))
            .unwrap()
            .1;
        assert_eq!(template["selectionStrategy"], "failOnErrors", "{body}");
    }
    assert!(
        tenant.double.violations().is_empty(),
        "{:?}",
        tenant.double.violations()
    );
}

#[tokio::test]
async fn report_outputs_are_listed_when_the_status_has_no_results() {
    let tenant = start_tenant(CloudDouble::builder().without_status_results()).await;
    let request = ReportRequest::sense_sheet_pdf("a1", "sheet-1", "regional");
    let files = tenant
        .client()
        .generate_report(&request, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "regional");
    assert!(files[0].1.starts_with(b"%PDF-"));
    assert!(
        tenant
            .double
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/reports/") && r.ends_with("/outputs")),
        "{:?}",
        tenant.double.requests()
    );
}

#[tokio::test]
async fn a_done_report_without_outputs_is_an_error() {
    let tenant = start_tenant(CloudDouble::builder().without_report_outputs()).await;
    let request = ReportRequest::sense_sheet_pdf("a1", "sheet-1", "regional");
    let err = tenant
        .client()
        .generate_report(&request, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataSource, "{err}");
    assert!(err.to_string().contains("no outputs"), "{err}");
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let tenant = start_tenant(CloudDouble::builder()).await;
    let client = tenant.client();
    tenant.double.rate_limit_next(2, 1);
    let started = Instant::now();
    assert_eq!(client.apps().await.unwrap().len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured"
    );
    assert_eq!(tenant.double.rate_limited(), 2);

    let impatient = CloudClient::builder(tenant.double.url())
        .with_api_key(Secret::new(&tenant.key))
        .with_ca_file(&tenant.ca)
        .with_rate_limit_wait(Duration::from_secs(1), 5)
        .build()
        .unwrap();
    tenant.double.rate_limit_next(1, 30);
    let err = impatient.apps().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn a_rate_limited_report_request_is_sent_again_after_retry_after() {
    let tenant = start_tenant(CloudDouble::builder().report_steps(0)).await;
    let client = tenant.client();
    let request = ReportRequest::sense_data("a1", "chart-1", "data");

    tenant.double.rate_limit_next(1, 1);
    let started = Instant::now();
    client.create_report(&request).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After in seconds"
    );

    // The date has whole seconds: three from now is a wait of more than two.
    tenant.double.rate_limit_next_until(1, 3);
    let started = Instant::now();
    client.create_report(&request).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "Retry-After as an HTTP date: {:?}",
        started.elapsed()
    );

    assert_eq!(tenant.double.rate_limited(), 2);
    let posts = tenant
        .double
        .requests()
        .iter()
        .filter(|r| *r == "POST /api/v1/reports")
        .count();
    assert_eq!(posts, 4, "each refused request was sent once more");
    assert_eq!(tenant.double.reports().len(), 2);
}

#[tokio::test]
async fn report_creation_is_paced_to_the_report_rate() {
    let window = Duration::from_millis(1500);
    let tenant = start_tenant(
        CloudDouble::builder()
            .report_rate(3, window)
            .report_steps(0),
    )
    .await;
    let client = CloudClient::builder(tenant.double.url())
        .with_api_key(Secret::new(&tenant.key))
        .with_ca_file(&tenant.ca)
        .with_report_rate(3, window)
        .build()
        .unwrap();
    let started = Instant::now();
    for n in 0..5 {
        let request = ReportRequest::sense_data("a1", "chart-1", &format!("out{n}"));
        client.create_report(&request).await.unwrap();
    }
    assert!(
        started.elapsed() >= window,
        "the fourth request waited for the window"
    );
    assert_eq!(
        tenant.double.rate_limited(),
        0,
        "the client never hit the server's limit"
    );
    assert_eq!(tenant.double.reports().len(), 5);
}

#[tokio::test]
async fn a_report_slow_to_arrive_does_not_make_the_next_window_too_early() {
    let window = Duration::from_millis(1000);
    let tenant = start_tenant(
        CloudDouble::builder()
            .report_rate(3, window)
            .report_steps(0)
            .late_first_report(Duration::from_millis(400)),
    )
    .await;
    let client = CloudClient::builder(tenant.double.url())
        .with_api_key(Secret::new(&tenant.key))
        .with_ca_file(&tenant.ca)
        .with_report_rate(3, window)
        .build()
        .unwrap();
    for n in 0..4 {
        let request = ReportRequest::sense_data("a1", "chart-1", &format!("out{n}"));
        client.create_report(&request).await.unwrap();
    }
    assert_eq!(
        tenant.double.rate_limited(),
        0,
        "the fourth request arrived after the tenant's window of the first had ended"
    );
    assert_eq!(tenant.double.reports().len(), 4);
}

#[tokio::test]
async fn a_malformed_report_request_is_refused() {
    let tenant = start_tenant(CloudDouble::builder()).await;
    let bad = ReportRequest::from_json(serde_json::json!({
        "type": "sense-sheet-1.0",
        "senseSheetTemplate": {"appId": "a1", "sheet": {"id": "s"}},
        "output": {"outputId": "has a space", "type": "pdf"}
    }));
    let err = tenant.client().create_report(&bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert_eq!(tenant.double.violations().len(), 1);
}
