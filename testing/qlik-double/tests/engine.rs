//! The engine protocol end to end over a raw WebSocket: frames shaped as recorded traffic,
//! selections, hypercubes checked against independent sums, paging, errors and violations.

mod common;

use std::time::Duration;

use common::*;
use mad_core::{ColumnBuilder, Field, FieldKind, Schema, Table, Value};
use mad_qlik_double::{App, QlikDouble, SectionAccess};
use serde_json::{Value as Json, json};

async fn superstore_double() -> QlikDouble {
    QlikDouble::builder()
        .app(superstore())
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn open_select_west_and_sum_sales_by_state() {
    let double = superstore_double().await;
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;

    let greeting = client.frame().await;
    assert_eq!(
        greeting,
        json!({"jsonrpc":"2.0","method":"OnConnected","params":{"qSessionState":"SESSION_CREATED"}})
    );
    client
        .send_raw(r#"{"jsonrpc":"2.0","delta":false,"method":"OpenDoc","handle":-1,"id":1,"params":["superstore","","","",false]}"#)
        .await;
    let opened = client.response(1).await;
    assert_eq!(
        opened,
        json!({"jsonrpc":"2.0","id":1,"result":{"qReturn":{"qType":"Doc","qHandle":1,"qGenericId":"superstore"}},"change":[1]})
    );

    client.select(1, "Region", &["West"]).await;
    let cube_handle = client
        .object(1, cube(&["State"], &["Sum([Sales])"], (2, 100)))
        .await;
    let layout = client.ok(cube_handle, "GetLayout", json!([])).await["qLayout"].clone();
    let hc = &layout["qHyperCube"];

    let expected = csv_sums("State", "Sales", Some(("Region", "West")));
    assert_eq!(hc["qSize"], json!({"qcx": 2, "qcy": expected.len()}));
    let matrix = hc["qDataPages"][0]["qMatrix"].as_array().unwrap();
    assert_eq!(matrix.len(), expected.len());
    for row in matrix {
        let state = row[0]["qText"].as_str().unwrap();
        assert_eq!(row[0]["qNum"], "NaN", "text dimension cells carry qNum NaN");
        assert_eq!(row[0]["qState"], "O");
        assert_eq!(row[1]["qState"], "L");
        assert_eq!(row[1]["qElemNumber"], 0);
        let sum = row[1]["qNum"].as_f64().unwrap();
        assert!(
            close_enough(sum, expected[state]),
            "{state}: {sum} vs {}",
            expected[state]
        );
    }
    let total: f64 = expected.values().sum();
    assert!(close_enough(
        hc["qGrandTotalRow"][0]["qNum"].as_f64().unwrap(),
        total
    ));

    let evaluated = client.ok(1, "Evaluate", json!(["Sum(Sales)"])).await;
    let text = evaluated["qReturn"].as_str().unwrap();
    assert!(close_enough(text.parse().unwrap(), total), "{text}");
    assert!(double.violations().is_empty(), "{:?}", double.violations());
}

#[tokio::test]
async fn layout_matches_the_recorded_engine_layout() {
    let golden_dir = format!("{TRAFFIC}/corectl/test/golden");
    let read = |name: &str| -> Json {
        let text = std::fs::read_to_string(format!("{golden_dir}/{name}")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let properties =
        read("TestObjectManagementCommands_object_properties_object-using-inline.golden");
    let recorded = read("TestObjectManagementCommands_object_layout_object-using-inline.golden");

    // The data behind the recording: three xyz values counted 1, 3 and 1 times.
    let schema = Schema::new(vec![
        Field::new("xyz", FieldKind::Text),
        Field::new("numbers", FieldKind::Integer),
    ]);
    let mut xyz = ColumnBuilder::default();
    let mut numbers = ColumnBuilder::default();
    for (x, n) in [("x", 1.0), ("y", 2.0), ("y", 3.0), ("y", 4.0), ("z", 5.0)] {
        xyz.push(Value::text(x));
        numbers.push(Value::Number(n));
    }
    let table = Table::new(schema, vec![xyz.finish(), numbers.finish()]).unwrap();
    let double = QlikDouble::builder()
        .app(App::new("corectl", table).with_object("object-using-inline", properties))
        .start()
        .await
        .unwrap();
    let mut client = connect(double.addr(), &double.app_url("corectl")).await;
    let doc = client.open("corectl").await;
    let object = client
        .ok(doc, "GetObject", json!(["object-using-inline"]))
        .await;
    assert_eq!(object["qReturn"]["qType"], "GenericObject");
    assert_eq!(object["qReturn"]["qGenericType"], "my-hypercube");
    let handle = object["qReturn"]["qHandle"].as_i64().unwrap();
    let layout = client.ok(handle, "GetLayout", json!([])).await["qLayout"].clone();
    assert_eq!(layout, recorded, "ours:\n{layout:#}");
}

#[tokio::test]
async fn paging_clips_to_the_cube_and_refuses_more_than_10000_cells() {
    let double = superstore_double().await;
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;
    let doc = client.open("superstore").await;
    let handle = client
        .object(doc, cube(&["Row ID"], &["Sum(Sales)"], (0, 0)))
        .await;
    let layout = client.ok(handle, "GetLayout", json!([])).await["qLayout"].clone();
    let rows = layout["qHyperCube"]["qSize"]["qcy"].as_i64().unwrap();
    assert_eq!(rows, 9994);

    let mut top = 0;
    let mut sum = 0.0;
    let mut pages = 0;
    loop {
        let page = json!([{"qLeft": 0, "qTop": top, "qWidth": 2, "qHeight": 5000}]);
        let result = client
            .ok(handle, "GetHyperCubeData", json!(["/qHyperCubeDef", page]))
            .await;
        let page = &result["qDataPages"][0];
        let height = page["qArea"]["qHeight"].as_i64().unwrap();
        if height == 0 {
            break;
        }
        assert_eq!(page["qArea"]["qTop"], top);
        assert_eq!(page["qArea"]["qWidth"], 2);
        for row in page["qMatrix"].as_array().unwrap() {
            sum += row[1]["qNum"].as_f64().unwrap();
        }
        top += height;
        pages += 1;
    }
    assert_eq!((top, pages), (9994, 2));
    let total: f64 = csv_sums("Region", "Sales", None).values().sum();
    assert!(close_enough(sum, total), "{sum} vs {total}");

    let wide = json!([{"qLeft": 1, "qTop": 9990, "qWidth": 10, "qHeight": 100}]);
    let clipped = client
        .ok(handle, "GetHyperCubeData", json!(["/qHyperCubeDef", wide]))
        .await;
    assert_eq!(
        clipped["qDataPages"][0]["qArea"],
        json!({"qLeft": 1, "qTop": 9990, "qWidth": 1, "qHeight": 4})
    );

    for pages in [
        json!([{"qLeft": 0, "qTop": 0, "qWidth": 2, "qHeight": 5001}]),
        json!([{"qLeft": 0, "qTop": 0, "qWidth": 2, "qHeight": 5000}, {"qLeft": 0, "qTop": 5000, "qWidth": 1, "qHeight": 1}]),
    ] {
        let response = client
            .call(handle, "GetHyperCubeData", json!(["/qHyperCubeDef", pages]))
            .await;
        assert_eq!(response["error"]["code"], 7009, "{response}");
        assert_eq!(response["error"]["message"], "Calculation pages too large");
    }
    assert!(double.violations().is_empty());
}

#[tokio::test]
async fn engine_errors_have_the_engine_codes_and_violations_are_recorded() {
    let double = superstore_double().await;
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;

    let none = client.call(-1, "GetActiveDoc", json!([])).await;
    assert_eq!(
        none["error"],
        json!({"code": 1007, "parameter": "No active document", "message": "App invalid"})
    );
    let missing = client.call(-1, "OpenDoc", json!(["nope"])).await;
    assert_eq!(missing["error"]["code"], 1003);
    let doc = client.open("superstore").await;
    let again = client.call(-1, "OpenDoc", json!(["superstore"])).await;
    assert_eq!(
        again["error"],
        json!({"code": 1002, "parameter": "superstore", "message": "App already open"})
    );
    assert!(
        double.violations().is_empty(),
        "engine errors are not violations"
    );

    let unknown = client.call(doc, "OpenApp", json!([])).await;
    assert_eq!(unknown["error"]["code"], -32601);
    let bad = client
        .call(doc, "GetField", json!({"qName": "Region"}))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    let typed = client.call(doc, "Evaluate", json!([42])).await;
    assert_eq!(typed["error"]["code"], -32602);
    let too_many = client.call(-1, "EngineVersion", json!([1])).await;
    assert_eq!(too_many["error"]["code"], -32602);
    let handle = client.call(99, "GetLayout", json!([])).await;
    assert_eq!(handle["error"]["code"], -32602);
    client
        .send_raw(r#"{"jsonrpc":"2.0","id":77,"method":"GetActiveDoc","params":[]}"#)
        .await;
    assert_eq!(client.response(77).await["error"]["code"], -32600);

    let violations = double.violations();
    let methods: Vec<&str> = violations.iter().map(|v| v.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "Doc.OpenApp",
            "Doc.GetField",
            "Doc.Evaluate",
            "Global.EngineVersion",
            "GetLayout",
            "GetActiveDoc"
        ]
    );
    assert!(
        violations[1].reason.contains("qName"),
        "{:?}",
        violations[1]
    );
    assert!(
        violations[2].reason.contains("qExpression"),
        "{:?}",
        violations[2]
    );

    let misspelled = json!([{
        "qInfo": {"qType": "t"},
        "qHyperCubeDef": {"qDimensions": [{"qDef": {
            "qFieldDefs": ["Region"],
            "qSortCriterias": [{"qSortByLoadOrdr": 1}]
        }}]}
    }]);
    let refused = client.call(doc, "CreateSessionObject", misspelled).await;
    assert_eq!(refused["error"]["code"], -32602);
    let violations = double.violations();
    let last = violations.last().unwrap();
    assert_eq!(last.method, "Doc.CreateSessionObject");
    assert!(last.reason.contains("qSortByLoadOrdr"), "{last:?}");

    let object = client.ok(doc, "GetObject", json!(["no-such-object"])).await;
    assert_eq!(object["qReturn"], json!({"qType": null, "qHandle": null}));
    let strict = QlikDouble::builder()
        .app(superstore())
        .missing_objects_as_errors()
        .start()
        .await
        .unwrap();
    let mut client = connect(strict.addr(), &strict.app_url("superstore")).await;
    let doc = client.open("superstore").await;
    let object = client
        .call(doc, "GetObject", json!(["no-such-object"]))
        .await;
    assert_eq!(object["error"]["code"], 2);
}

#[tokio::test]
async fn named_and_positional_params_and_enum_spellings_are_accepted() {
    let double = superstore_double().await;
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;
    let opened = client
        .ok(-1, "OpenDoc", json!({"qDocName": "superstore"}))
        .await;
    let doc = opened["qReturn"]["qHandle"].as_i64().unwrap();
    let field = client
        .ok(doc, "GetField", json!({"qFieldName": "Region"}))
        .await;
    assert_eq!(field["qReturn"]["qType"], "Field");
    for mode in [json!("S"), json!("DATA_MODE_STRAIGHT"), json!(0)] {
        let mut props = cube(&["Region"], &["Count(DISTINCT [Order ID])"], (2, 10));
        props["qHyperCubeDef"]["qMode"] = mode;
        let handle = client.object(doc, props).await;
        let layout = client.ok(handle, "GetLayout", json!([])).await;
        assert_eq!(layout["qLayout"]["qHyperCube"]["qSize"]["qcy"], 4);
        client.ok(doc, "DestroySessionObject", json!(["x"])).await;
    }
    assert!(double.violations().is_empty(), "{:?}", double.violations());
}

#[tokio::test]
async fn sessions_keep_selections_per_identity_and_reattach_within_the_ttl() {
    let double = QlikDouble::builder()
        .app(superstore())
        .session_ttl(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let url_a = format!("{}/identity/a", double.app_url("superstore"));
    let url_b = format!("{}/identity/b", double.app_url("superstore"));

    let mut a = connect(double.addr(), &url_a).await;
    let doc = a.open("superstore").await;
    a.select(doc, "Region", &["West"]).await;
    let mut b = connect(double.addr(), &url_b).await;
    assert_eq!(
        b.frame().await["params"]["qSessionState"],
        "SESSION_CREATED"
    );
    let doc_b = b.open("superstore").await;
    let regions = |n: usize| cube(&["Region"], &["Sum(Sales)"], (2, n as i64));
    let hb = b.object(doc_b, regions(10)).await;
    let layout_b = b.ok(hb, "GetLayout", json!([])).await;
    assert_eq!(
        layout_b["qLayout"]["qHyperCube"]["qSize"]["qcy"], 4,
        "identity b has no selection"
    );
    drop(a);

    // Reconnecting as a within the TTL re-attaches: the doc and the selection are still there.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut a = connect(double.addr(), &url_a).await;
    assert_eq!(
        a.frame().await["params"]["qSessionState"],
        "SESSION_ATTACHED"
    );
    a.send_raw(
        r#"{"jsonrpc":"2.0","delta":false,"method":"GetActiveDoc","handle":-1,"id":1,"params":[]}"#,
    )
    .await;
    let active = a.frame().await;
    assert_eq!(
        active,
        json!({"jsonrpc":"2.0","id":1,"result":{"qReturn":{"qType":"Doc","qHandle":1,"qGenericId":"superstore"}}})
    );
    let ha = a.object(1, regions(10)).await;
    let layout_a = a.ok(ha, "GetLayout", json!([])).await;
    let matrix = &layout_a["qLayout"]["qHyperCube"]["qDataPages"][0]["qMatrix"];
    assert_eq!(matrix.as_array().unwrap().len(), 1);
    assert_eq!(matrix[0][0]["qText"], "West");
    assert_eq!(matrix[0][0]["qState"], "S");

    assert_eq!(double.sessions_opened(), 2);
    assert_eq!(double.sessions_attached(), 1);
    let sessions = double.sessions();
    let a_info = sessions
        .iter()
        .find(|s| s.identity.as_deref() == Some("a"))
        .unwrap();
    assert_eq!(a_info.selections["Region"], vec!["West".to_string()]);
    assert_eq!(a_info.history[0].method, "Field.SelectValues");
    let b_info = sessions
        .iter()
        .find(|s| s.identity.as_deref() == Some("b"))
        .unwrap();
    assert!(b_info.selections.is_empty());
    assert_eq!(double.request_count("OpenDoc"), 2);
    assert_eq!(double.request_counts()["Field.SelectValues"], 1);
}

#[tokio::test]
async fn shared_sessions_push_changes_to_the_other_socket() {
    let double = superstore_double().await;
    let url = double.app_url("superstore");
    let mut first = connect(double.addr(), &url).await;
    let doc = first.open("superstore").await;
    let handle = first
        .object(doc, cube(&["Region"], &["Sum(Sales)"], (2, 10)))
        .await;
    first.ok(handle, "GetLayout", json!([])).await;

    let mut second = connect(double.addr(), &url).await;
    assert_eq!(
        second.frame().await["params"]["qSessionState"],
        "SESSION_ATTACHED"
    );
    second.select(1, "Region", &["East"]).await;
    let pushed = first.frame().await;
    assert!(pushed.get("id").is_none());
    assert_eq!(pushed["change"], json!([handle]), "{pushed}");
}

#[tokio::test]
async fn list_objects_show_states_and_duals_keep_numbers() {
    let double = superstore_double().await;
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;
    let doc = client.open("superstore").await;
    client.select(doc, "Region", &["West"]).await;
    let list = json!({
        "qInfo": {"qType": "my-list-object"},
        "qListObjectDef": {
            "qDef": {"qFieldDefs": ["Region"], "qSortCriterias": [{"qSortByState": 1, "qSortByAscii": 1}]},
            "qShowAlternatives": true,
            "qInitialDataFetch": [{"qTop": 0, "qHeight": 10, "qLeft": 0, "qWidth": 1}]
        }
    });
    let handle = client.object(doc, list).await;
    let layout = client.ok(handle, "GetLayout", json!([])).await;
    let lo = &layout["qLayout"]["qListObject"];
    let cells: Vec<(String, String)> = lo["qDataPages"][0]["qMatrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0]["qText"].as_str().unwrap().into(),
                r[0]["qState"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("West", "S"),
        ("Central", "A"),
        ("East", "A"),
        ("South", "A"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(cells, expected);
    assert_eq!(lo["qDimensionInfo"]["qStateCounts"]["qSelected"], 1);

    let page = json!(["/qListObjectDef", [{"qTop": 1, "qHeight": 2, "qLeft": 0, "qWidth": 1}]]);
    let data = client.ok(handle, "GetListObjectData", page).await;
    assert_eq!(data["qDataPages"][0]["qMatrix"][0][0]["qText"], "Central");

    client.ok(doc, "ClearAll", json!([false])).await;
    let dates = client
        .object(doc, cube(&["Order Date"], &["Count([Order ID])"], (2, 1)))
        .await;
    let layout = client.ok(dates, "GetLayout", json!([])).await;
    let first = &layout["qLayout"]["qHyperCube"]["qDataPages"][0]["qMatrix"][0][0];
    assert_eq!(first["qText"], "2016-11-08", "dates keep their text");
    assert_eq!(first["qNum"], 42682.0, "and their day serial");
    let info = &layout["qLayout"]["qHyperCube"]["qDimensionInfo"][0];
    assert_eq!(info["qNumFormat"]["qType"], "D");
    assert_eq!(info["qDimensionType"], "T");
}

#[tokio::test]
async fn master_items_variables_and_delta_answers() {
    let app = superstore()
        .with_measure("m-sales", "Total sales", "Sum(Sales)")
        .with_dimension("d-region", "Sales region", "Region")
        .with_variable("vRegionCount", "=Count(DISTINCT Region)")
        .with_variable("vLabel", "Sales");
    let double = QlikDouble::builder().app(app).start().await.unwrap();
    let mut client = connect(double.addr(), &double.app_url("superstore")).await;
    let doc = client.open("superstore").await;

    let props = json!({
        "qInfo": {"qType": "chart"},
        "title": {"qStringExpression": "='Regions: ' & Count(DISTINCT Region)"},
        "qHyperCubeDef": {
            "qDimensions": [{"qLibraryId": "d-region"}],
            "qMeasures": [{"qLibraryId": "m-sales", "qSortBy": {"qSortByNumeric": -1}}],
            "qInterColumnSortOrder": [1, 0],
            "qInitialDataFetch": [{"qLeft": 0, "qTop": 0, "qWidth": 2, "qHeight": 10}]
        }
    });
    let handle = client.object(doc, props).await;
    let layout = client.ok(handle, "GetLayout", json!([])).await["qLayout"].clone();
    assert_eq!(layout["title"], "Regions: 4");
    let hc = &layout["qHyperCube"];
    assert_eq!(hc["qDimensionInfo"][0]["qFallbackTitle"], "Sales region");
    assert_eq!(hc["qMeasureInfo"][0]["qFallbackTitle"], "Total sales");
    let sums = csv_sums("Region", "Sales", None);
    let best = sums.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
    assert_eq!(
        hc["qDataPages"][0]["qMatrix"][0][0]["qText"],
        best.0.as_str(),
        "sorted by sales, descending"
    );

    let variable = client
        .ok(doc, "GetVariableByName", json!(["vRegionCount"]))
        .await;
    let vh = variable["qReturn"]["qHandle"].as_i64().unwrap();
    let vlayout = client.ok(vh, "GetLayout", json!([])).await;
    assert_eq!(vlayout["qLayout"]["qText"], "4");
    assert_eq!(vlayout["qLayout"]["qNum"], 4.0);
    let evaluated = client
        .ok(doc, "EvaluateEx", json!(["$(vRegionCount) * 2"]))
        .await;
    assert_eq!(
        evaluated["qValue"],
        json!({"qText": "8", "qIsNumeric": true, "qNumber": 8})
    );
    let created = client
        .ok(
            doc,
            "CreateSessionVariable",
            json!([{"qInfo": {"qType": "variable"}, "qName": "vMine", "qDefinition": "=1+1"}]),
        )
        .await;
    assert_eq!(created["qReturn"]["qType"], "GenericVariable");
    assert_eq!(
        client.ok(doc, "GetVariableByName", json!(["nope"])).await["qReturn"]["qHandle"],
        Json::Null
    );

    let id = 900;
    let frame = json!({"jsonrpc": "2.0", "delta": true, "method": "GetActiveDoc", "handle": -1, "id": id, "params": []});
    client.send_raw(&frame.to_string()).await;
    let response = client.response(id).await;
    assert_eq!(response["delta"], true);
    assert_eq!(response["result"]["qReturn"][0]["op"], "add");
    assert_eq!(response["result"]["qReturn"][0]["path"], "/");
    assert_eq!(response["result"]["qReturn"][0]["value"]["qHandle"], 1);
}

#[tokio::test]
async fn section_access_gives_each_user_their_rows() {
    let access = SectionAccess::new("Region")
        .allow("CORP\\alice", ["West"])
        .allow("bob", ["East", "South"]);
    let double = QlikDouble::builder()
        .app(superstore().with_section_access(access))
        .start()
        .await
        .unwrap();
    let url = double.app_url("superstore");
    let as_user = |id: &str| {
        Connect::default().header("X-Qlik-User", &format!("UserDirectory=CORP; UserId={id}"))
    };

    let mut alice = try_connect(double.addr(), &url, &as_user("alice"))
        .await
        .unwrap();
    let doc = alice.open("superstore").await;
    let user = alice.ok(-1, "GetAuthenticatedUser", json!([])).await;
    assert_eq!(user["qReturn"], "UserDirectory=CORP; UserId=alice");
    let h = alice
        .object(doc, cube(&["Region"], &["Sum(Sales)"], (2, 10)))
        .await;
    let layout = alice.ok(h, "GetLayout", json!([])).await;
    let matrix = layout["qLayout"]["qHyperCube"]["qDataPages"][0]["qMatrix"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(matrix.len(), 1);
    assert_eq!(matrix[0][0]["qText"], "West");

    let mut bob = try_connect(double.addr(), &url, &as_user("bob"))
        .await
        .unwrap();
    let doc = bob.open("superstore").await;
    let cardinal_field = bob.ok(doc, "GetField", json!(["Region"])).await["qReturn"]["qHandle"]
        .as_i64()
        .unwrap();
    assert_eq!(
        bob.ok(cardinal_field, "GetCardinal", json!([])).await["qReturn"],
        2
    );

    let mut eve = try_connect(double.addr(), &url, &as_user("eve"))
        .await
        .unwrap();
    let denied = eve.call(-1, "OpenDoc", json!(["superstore"])).await;
    assert_eq!(denied["error"]["code"], 5);
}

#[tokio::test]
async fn session_apps_follow_the_recorded_shape() {
    let double = superstore_double().await;
    let mut client = connect(double.addr(), &double.url("/app/engineData")).await;
    client.frame().await;
    client
        .send_raw(r#"{"jsonrpc":"2.0","delta":false,"method":"CreateSessionApp","handle":-1,"id":1,"params":[]}"#)
        .await;
    let response = client.response(1).await;
    assert_eq!(
        response["result"]["qReturn"],
        json!({"qType": "Doc", "qHandle": 1})
    );
    assert_eq!(response["change"], json!([1]));
    let id = response["result"]["qSessionAppId"].as_str().unwrap();
    assert!(id.starts_with("SessionApp_"), "{id}");
    let list = client.ok(-1, "GetDocList", json!([])).await;
    assert_eq!(list["qDocList"][0]["qDocId"], "superstore");
    let version = client.ok(-1, "EngineVersion", json!([])).await;
    assert_eq!(version["qVersion"]["qComponentVersion"], "12.2528.0");
}

#[tokio::test]
async fn nulls_formats_and_suppression() {
    let schema = Schema::new(vec![
        Field::new("Team", FieldKind::Text),
        Field::new("Amount", FieldKind::Number),
    ]);
    let mut team = ColumnBuilder::default();
    let mut amount = ColumnBuilder::default();
    for (t, a) in [
        (Value::text("A"), Value::Number(1234.5)),
        (Value::Null, Value::Number(2.0)),
        (Value::text("B"), Value::Null),
        (Value::text("C"), Value::Number(0.0)),
    ] {
        team.push(t);
        amount.push(a);
    }
    let table = Table::new(schema, vec![team.finish(), amount.finish()]).unwrap();
    let double = QlikDouble::builder()
        .app(App::new("teams", table))
        .start()
        .await
        .unwrap();
    let mut client = connect(double.addr(), &double.app_url("teams")).await;
    let doc = client.open("teams").await;

    let mut props = cube(&["Team"], &["Avg(Amount)"], (2, 10));
    props["qHyperCubeDef"]["qMeasures"][0]["qDef"]["qNumFormat"] = json!({"qType": "F", "qnDec": 2, "qUseThou": 1, "qFmt": "#,##0.00", "qDec": ".", "qThou": ","});
    let handle = client.object(doc, props.clone()).await;
    let layout = client.ok(handle, "GetLayout", json!([])).await;
    let matrix = layout["qLayout"]["qHyperCube"]["qDataPages"][0]["qMatrix"].clone();
    assert_eq!(matrix.as_array().unwrap().len(), 4);
    assert_eq!(
        matrix[0][1],
        json!({"qText": "1,234.50", "qNum": 1234.5, "qElemNumber": 0, "qState": "L"})
    );
    assert_eq!(
        matrix[1][0],
        json!({"qText": "-", "qNum": "NaN", "qElemNumber": -2, "qState": "O", "qIsNull": true})
    );
    assert_eq!(
        matrix[2][1],
        json!({"qText": "-", "qNum": "NaN", "qElemNumber": 0, "qState": "L", "qIsNull": true})
    );

    props["qHyperCubeDef"]["qSuppressMissing"] = json!(true);
    props["qHyperCubeDef"]["qDimensions"][0]["qNullSuppression"] = json!(true);
    let handle = client.object(doc, props.clone()).await;
    let layout = client.ok(handle, "GetLayout", json!([])).await;
    assert_eq!(
        layout["qLayout"]["qHyperCube"]["qSize"]["qcy"], 2,
        "A and C remain"
    );
    props["qHyperCubeDef"]["qSuppressZero"] = json!(true);
    let handle = client.object(doc, props).await;
    let layout = client.ok(handle, "GetLayout", json!([])).await;
    assert_eq!(
        layout["qLayout"]["qHyperCube"]["qSize"]["qcy"], 1,
        "only A remains"
    );

    let bad = client
        .object(doc, cube(&["Team"], &["Rank(Amount)"], (2, 10)))
        .await;
    let layout = client.ok(bad, "GetLayout", json!([])).await;
    assert_eq!(
        layout["qLayout"]["qHyperCube"]["qError"]["qErrorCode"],
        6000
    );
    let data = client
        .call(bad, "GetHyperCubeData", json!(["/qHyperCubeDef", []]))
        .await;
    assert_eq!(data["error"]["code"], 6000);
}
