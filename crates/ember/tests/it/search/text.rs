//! Full-text search: `_text` and `_content`.

use serde_json::json;

use super::{Checks, body_text, put};
use crate::common::TestServer;

both_stores!(full_text_search);

async fn full_text_search(s: &TestServer) {
    let div = |t: &str| {
        json!({"status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{t}</div>")})
    };
    put(
        s,
        "Patient",
        "t1",
        json!({"text": div("Lives in Århus &amp; <b>bikes</b> daily"),
        "name": [{"family": "Holm"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "t2",
        json!({"text": div("Retired teacher"),
        "name": [{"family": "Bikes"}], "address": [{"city": "Odense"}]}),
    )
    .await;
    put(s, "Patient", "t3", json!({"name": [{"family": "Vang"}]})).await;
    let mut c = Checks::new(s);
    // _text: the narrative only, word by word, case- and accent-insensitive.
    c.ids("Patient?_text=bikes", &["t1"]).await;
    c.ids("Patient?_text=ARHUS", &["t1"]).await;
    c.ids("Patient?_text=daily bikes", &["t1"]).await;
    c.ids("Patient?_text=teacher,arhus", &["t1", "t2"]).await;
    c.ids("Patient?_text=holm", &[]).await;
    // _content: every string, the narrative included.
    c.ids("Patient?_content=bikes", &["t1", "t2"]).await;
    c.ids("Patient?_content=odense", &["t2"]).await;
    c.ids("Patient?_content=vang", &["t3"]).await;
    c.ids("Patient?_content=vang&_text=bikes", &[]).await;
    // An update replaces the words.
    put(s, "Patient", "t3", json!({"name": [{"family": "Dahl"}]})).await;
    c.ids("Patient?_content=vang", &[]).await;
    c.ids("Patient?_content=dahl", &["t3"]).await;
    c.finish();
    // Input that is not words is a 400, not an error of the text engine.
    let r = s.get("Patient?_content=%22%2A%22").await;
    assert_eq!(r.status.as_u16(), 400, "{}", body_text(&r));
}
