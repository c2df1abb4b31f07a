//! The Reports API: server-side PDF, image and Excel exports of an app's sheets and charts.
//!
//! `POST /api/v1/reports` answers `202 Accepted` with the status URL in `Location`; the
//! status is polled until `done`, the outputs are listed (`GET .../outputs`, or the status's
//! deprecated `results` where a tenant still sends them), and each output is downloaded from
//! its `location` (a temporary content URL on the same tenant).

use std::time::{Duration, Instant};

use mad_core::filter::FieldFilter;
use mad_core::{Error, ErrorKind, FilterSet, Result};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value as Json, json};

use super::{BACKEND, CloudClient, unexpected};

/// A report request body, built for the common templates or given as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    body: Json,
}

/// The template member each request type carries.
fn template_member(kind: &str) -> Option<&'static str> {
    match kind {
        "sense-data-1.0" => Some("senseDataTemplate"),
        "sense-sheet-1.0" => Some("senseSheetTemplate"),
        "sense-image-1.0" => Some("senseImageTemplate"),
        "sense-excel-template-1.0" => Some("senseExcelTemplate"),
        _ => None,
    }
}

impl ReportRequest {
    /// The data of a chart or table as an XLSX workbook (`sense-data-1.0`).
    pub fn sense_data(app_id: &str, object_id: &str, output_id: &str) -> Self {
        ReportRequest {
            body: json!({
                "type": "sense-data-1.0",
                "senseDataTemplate": {
                    "appId": app_id,
                    "id": object_id,
                    "exportOptions": {"showTitles": true, "showTotals": true, "showSelections": false}
                },
                "output": {"outputId": output_id, "type": "xlsx"}
            }),
        }
    }

    /// A sheet as a PDF page (`sense-sheet-1.0`), A4, fitted to the page.
    pub fn sense_sheet_pdf(app_id: &str, sheet_id: &str, output_id: &str) -> Self {
        ReportRequest {
            body: json!({
                "type": "sense-sheet-1.0",
                "senseSheetTemplate": {"appId": app_id, "sheet": {"id": sheet_id}},
                "output": {
                    "outputId": output_id,
                    "type": "pdf",
                    "pdfOutput": {"size": "A4", "orientation": "A", "resizeType": "autofit"}
                }
            }),
        }
    }

    /// A chart as a PNG image (`sense-image-1.0`).
    pub fn sense_image_png(
        app_id: &str,
        object_id: &str,
        output_id: &str,
        width: u32,
        height: u32,
    ) -> Self {
        ReportRequest {
            body: json!({
                "type": "sense-image-1.0",
                "senseImageTemplate": {
                    "appId": app_id,
                    "visualization": {"id": object_id, "type": "visualization", "widthPx": width, "heightPx": height}
                },
                "output": {"outputId": output_id, "type": "image", "imageOutput": {"outFormat": "png"}}
            }),
        }
    }

    /// Any request body the API accepts.
    pub fn from_json(body: Json) -> Self {
        ReportRequest { body }
    }

    pub fn to_json(&self) -> &Json {
        &self.body
    }

    /// The output id the request names.
    pub fn output_id(&self) -> &str {
        self.body["output"]["outputId"].as_str().unwrap_or("")
    }

    /// Applies a filter set as the report's selections in the default state, with the
    /// `failOnErrors` strategy: a value the app does not have fails the report instead of
    /// being dropped (the API's default), which would export unfiltered data. "Except"
    /// filters cannot be written as report selections and are refused.
    pub fn with_selections(mut self, filters: &FilterSet) -> Result<Self> {
        let kind = self.body["type"].as_str().unwrap_or("").to_string();
        let member = template_member(&kind).ok_or_else(|| {
            Error::unsupported(BACKEND, format!("selections on a '{kind}' report request"))
        })?;
        let mut fields = Vec::new();
        for (field, rule) in filters.rules() {
            let FieldFilter::Only(values) = &rule.filter else {
                return Err(Error::unsupported(
                    BACKEND,
                    format!("an 'except' filter on '{field}' in a report request"),
                ));
            };
            let values: Vec<Json> = values.iter().map(|v| selection_value(v)).collect();
            fields.push(json!({"fieldName": field, "defaultIsNumeric": false, "values": values}));
        }
        self.body[member]["selectionsByState"] = json!({"$": fields});
        if takes_selection_strategy(member) {
            self.body[member]["selectionStrategy"] = json!("failOnErrors");
        }
        Ok(self)
    }
}

/// Whether a template member has `selectionStrategy` (the Excel template has none).
fn takes_selection_strategy(member: &str) -> bool {
    matches!(
        member,
        "senseDataTemplate" | "senseSheetTemplate" | "senseImageTemplate"
    )
}

/// A value as the Reports API writes selections: numbers as numbers, else text.
fn selection_value(value: &str) -> Json {
    match value.trim().parse::<f64>().ok().filter(|n| n.is_finite()) {
        Some(n) => json!({"text": value, "isNumeric": true, "number": n}),
        None => json!({"text": value, "isNumeric": false}),
    }
}

/// A created report request: its id and where its status is.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTicket {
    pub request_id: String,
    pub status_url: Url,
    /// Where the outputs are listed once the report is done.
    pub outputs_url: Url,
}

/// One finished output of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOutput {
    pub output_id: String,
    pub location: String,
}

/// A report request's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportStatus {
    /// `queued`, `processing`, `visiting`, `done`, `failed`, `aborting` or `aborted`.
    pub status: String,
    pub outputs: Vec<ReportOutput>,
    /// The API's error entries, as text, for failed requests.
    pub errors: Vec<String>,
}

impl ReportStatus {
    fn from_json(body: &Json) -> Self {
        let outputs = body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some(ReportOutput {
                    output_id: r["outputId"].as_str()?.to_string(),
                    location: r["location"].as_str()?.to_string(),
                })
            })
            .collect();
        ReportStatus {
            status: body["status"].as_str().unwrap_or("").to_string(),
            outputs,
            errors: error_texts(body),
        }
    }
}

/// The API's `requestErrors` and `exportErrors` entries of `body`, as `code title`.
fn error_texts(body: &Json) -> Vec<String> {
    ["requestErrors", "exportErrors"]
        .iter()
        .flat_map(|k| body[*k].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let code = e["code"].as_str().unwrap_or("");
            let title = e["title"].as_str().unwrap_or("");
            format!("{code} {title}").trim().to_string()
        })
        .collect()
}

/// The outputs a `GET .../outputs` page lists; one that is not done is an error with the
/// API's reasons.
fn listed_outputs(request_id: &str, page: &Json) -> Result<Vec<ReportOutput>> {
    let mut outputs = Vec::new();
    for entry in page["data"].as_array().into_iter().flatten() {
        let output_id = entry["outputId"].as_str().unwrap_or("").to_string();
        let status = entry["status"].as_str().unwrap_or("done");
        let location = entry["location"].as_str().unwrap_or("");
        if status != "done" || location.is_empty() {
            return Err(Error::new(
                ErrorKind::DataSource,
                format!(
                    "the output '{output_id}' of the report {request_id} is {status} without a \
                     location: {}",
                    error_texts(entry).join("; ")
                ),
            )
            .with_backend(BACKEND));
        }
        outputs.push(ReportOutput {
            output_id,
            location: location.to_string(),
        });
    }
    Ok(outputs)
}

impl CloudClient {
    /// Creates a report request, pacing creations to the report rate (default 10 per
    /// minute) and waiting out 429 answers.
    pub async fn create_report(&self, request: &ReportRequest) -> Result<ReportTicket> {
        let url = self.url(&["api", "v1", "reports"])?;
        let body = request.to_json().clone();
        let slot = self.pace_report().await;
        let response = self
            .send(|| self.http.request(Method::POST, url.clone()).json(&body))
            .await;
        drop(slot);
        let response = response?;
        if response.status() != StatusCode::ACCEPTED && response.status() != StatusCode::CREATED {
            return Err(unexpected(
                "the report request",
                format!("HTTP {}", response.status()),
            ));
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer: Json = response.json().await.unwrap_or(Json::Null);
        let request_id = answer["requestId"].as_str().unwrap_or("").to_string();
        let status_url = match location {
            Some(location) => self.same_origin(&location)?,
            None if !request_id.is_empty() => {
                self.url(&["api", "v1", "reports", &request_id, "status"])?
            }
            None => {
                return Err(unexpected(
                    "the report request",
                    "no Location and no requestId",
                ));
            }
        };
        let outputs_url = match answer["outputsUrl"].as_str() {
            Some(href) => self.same_origin(href)?,
            None if !request_id.is_empty() => {
                self.url(&["api", "v1", "reports", &request_id, "outputs"])?
            }
            None => outputs_beside(&status_url)?,
        };
        Ok(ReportTicket {
            request_id,
            status_url,
            outputs_url,
        })
    }

    /// The outputs of a finished report, from `GET .../outputs` (following `next` links).
    pub async fn report_outputs(&self, ticket: &ReportTicket) -> Result<Vec<ReportOutput>> {
        let mut outputs = Vec::new();
        let mut next = Some(ticket.outputs_url.clone());
        while let Some(url) = next.take() {
            let page = self.json(Method::GET, url, None).await?;
            outputs.extend(listed_outputs(&ticket.request_id, &page)?);
            if let Some(href) = page["links"]["next"]["href"].as_str() {
                next = Some(self.same_origin(href)?);
            }
        }
        Ok(outputs)
    }

    /// A report request's current state.
    pub async fn report_status(&self, ticket: &ReportTicket) -> Result<ReportStatus> {
        let body = self
            .json(Method::GET, ticket.status_url.clone(), None)
            .await?;
        Ok(ReportStatus::from_json(&body))
    }

    /// Polls a report until it is done and returns its outputs: the status's `results`
    /// where the tenant still sends them, else the listed outputs. A failed or aborted report,
    /// or a done one without outputs, is a `DataSource` error with the API's reasons; one not
    /// done after `limit` is `Timeout`.
    pub async fn wait_for_report(
        &self,
        ticket: &ReportTicket,
        limit: Duration,
    ) -> Result<Vec<ReportOutput>> {
        let started = Instant::now();
        loop {
            let status = self.report_status(ticket).await?;
            match status.status.as_str() {
                "done" => return self.finished_outputs(ticket, status).await,
                "failed" | "aborted" | "aborting" => {
                    return Err(Error::new(
                        ErrorKind::DataSource,
                        format!(
                            "the report {} ended {}: {}",
                            ticket.request_id,
                            status.status,
                            status.errors.join("; ")
                        ),
                    )
                    .with_backend(BACKEND));
                }
                _ => {}
            }
            if started.elapsed() >= limit {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the report {} was still {} after {limit:?}",
                        ticket.request_id, status.status
                    ),
                )
                .with_backend(BACKEND));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    async fn finished_outputs(
        &self,
        ticket: &ReportTicket,
        status: ReportStatus,
    ) -> Result<Vec<ReportOutput>> {
        let outputs = if status.outputs.is_empty() {
            self.report_outputs(ticket).await?
        } else {
            status.outputs
        };
        if outputs.is_empty() {
            let reasons = if status.errors.is_empty() {
                String::new()
            } else {
                format!(": {}", status.errors.join("; "))
            };
            return Err(Error::new(
                ErrorKind::DataSource,
                format!(
                    "the report {} is done but has no outputs{reasons}",
                    ticket.request_id
                ),
            )
            .with_backend(BACKEND));
        }
        Ok(outputs)
    }

    /// Downloads an output from its location, which must be on the tenant.
    pub async fn download(&self, location: &str) -> Result<Vec<u8>> {
        let url = self.same_origin(location)?;
        let response = self
            .send(|| self.http.request(Method::GET, url.clone()))
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unexpected("the report output", e))?;
        Ok(bytes.to_vec())
    }

    /// Creates a report, waits for it and downloads its outputs: `(output id, bytes)`.
    pub async fn generate_report(
        &self,
        request: &ReportRequest,
        limit: Duration,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let ticket = self.create_report(request).await?;
        let outputs = self.wait_for_report(&ticket, limit).await?;
        let mut files = Vec::with_capacity(outputs.len());
        for output in outputs {
            let bytes = self.download(&output.location).await?;
            files.push((output.output_id, bytes));
        }
        Ok(files)
    }
}

/// `.../outputs` beside a status URL ending in `.../status`.
fn outputs_beside(status_url: &Url) -> Result<Url> {
    let path = status_url.path();
    let Some(base) = path.strip_suffix("/status") else {
        return Err(unexpected(
            "the report request",
            "no outputsUrl or requestId, and a status URL not ending in /status",
        ));
    };
    let mut url = status_url.clone();
    url.set_path(&format!("{base}/outputs"));
    url.set_query(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mad_core::Filter;

    #[test]
    fn selections_go_into_the_template() {
        let filters = FilterSet::from_filters([
            Filter::new("Region", ["East"]),
            Filter::new("Year", ["2024"]),
        ]);
        let request = ReportRequest::sense_data("app", "obj", "out")
            .with_selections(&filters)
            .unwrap();
        let selections = &request.to_json()["senseDataTemplate"]["selectionsByState"]["$"];
        assert_eq!(selections[0]["fieldName"], "Region");
        assert_eq!(
            selections[0]["values"][0],
            json!({"text": "East", "isNumeric": false})
        );
        assert_eq!(selections[1]["values"][0]["number"], 2024.0);
        assert_eq!(
            request.to_json()["senseDataTemplate"]["selectionStrategy"],
            "failOnErrors"
        );
        let except = FilterSet::from_filters([Filter::new("Region", ["East"]).excluding()]);
        let err = ReportRequest::sense_data("a", "o", "x")
            .with_selections(&except)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }
}
