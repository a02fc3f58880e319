//! Tokens are checked before the upgrade; roles and rooms are enforced on every path.

use crate::common;

use common::{TestHub, upgrade_status};
use livehub::protocol::Role;
use serde_json::json;

#[tokio::test]
async fn bad_tokens_are_refused_with_401_before_the_upgrade() -> anyhow::Result<()> {
    let mut cfg = common::test_config();
    cfg.auth.allow_anonymous = livehub::config::DevToggle::Off;
    let hub = TestHub::with_config(cfg).await?;
    // no token, anonymous off
    assert_eq!(upgrade_status(&hub.ws_url("r", "")).await, 401);
    // bad signature
    let other = livehub::auth::Authenticator::new("another-secret-0123456", false);
    let forged = other.mint(&livehub::auth::Claims {
        sub: "u".into(),
        name: None,
        role: Role::Admin,
        room: "*".into(),
        exp: None,
        src: None,
        aff: None,
    })?;
    assert_eq!(
        upgrade_status(&hub.ws_url("r", &format!("token={forged}"))).await,
        401
    );
    // garbage
    assert_eq!(
        upgrade_status(&hub.ws_url("r", "token=not.a.jwt")).await,
        401
    );
    // expired
    let expired = hub.token_with(
        Role::Viewer,
        "r",
        "u",
        Some(livehub::hub::now_ms() / 1000 - 120),
    );
    assert_eq!(
        upgrade_status(&hub.ws_url("r", &format!("token={expired}"))).await,
        401
    );
    // a valid one still works
    let ok = hub.token(Role::Viewer, "r", "u");
    assert_eq!(
        upgrade_status(&hub.ws_url("r", &format!("token={ok}"))).await,
        101
    );
    hub.shutdown().await
}

#[tokio::test]
async fn a_token_for_another_room_is_refused_with_403() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let t = hub.token(Role::Host, "room-a", "h");
    assert_eq!(
        upgrade_status(&hub.ws_url("room-b", &format!("token={t}"))).await,
        403
    );
    let (status, body) = hub
        .post_command("room-b", Some(&t), r#"{"type":"announce","text":"hi"}"#)
        .await?;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    hub.shutdown().await
}

#[tokio::test]
async fn the_rest_command_endpoint_requires_a_host_or_admin_token() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let cmd = r#"{"type":"announce","text":"hello"}"#;
    let (status, body) = hub.post_command("r", None, cmd).await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    let viewer = hub.token(Role::Viewer, "r", "v");
    let (status, body) = hub.post_command("r", Some(&viewer), cmd).await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("forbidden"))
    );
    let host = hub.token(Role::Host, "r", "h");
    let (status, body) = hub.post_command("r", Some(&host), cmd).await?;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"ok": true, "seq": 1}));
    let admin = hub.token(Role::Admin, "*", "root");
    let (status, body) = hub
        .post_command(
            "r",
            Some(&admin),
            r#"{"type":"mute","user":"x","duration_ms":1000}"#,
        )
        .await?;
    assert_eq!((status, body), (200, json!({"ok": true})));
    // the audit endpoint too
    let (status, _) = hub.get("/api/rooms/r/deals/d", Some(&viewer)).await?;
    assert_eq!(status, 403);
    let (status, _) = hub.get("/api/rooms/r/deals/d", Some(&host)).await?;
    assert_eq!(status, 404);
    hub.shutdown().await
}

#[tokio::test]
async fn viewers_cannot_run_host_commands_and_anonymous_viewers_are_read_only() -> anyhow::Result<()>
{
    let hub = TestHub::start().await?;
    let (mut v, _) = hub.viewer("r", "v").await?;
    v.send(json!({"type": "pin", "request_id": "x", "product": {"id": "p", "title": "t", "price_cents": 1}})).await?;
    let e = v.json_of("error").await?;
    assert_eq!(
        (e["code"].clone(), e["request_id"].clone()),
        (json!("forbidden"), json!("x"))
    );

    let mut anon = common::Client::connect(&hub.ws_url("r", "")).await?;
    let w = anon.json_of("welcome").await?;
    assert_eq!(w["you"]["role"], "viewer");
    anon.send(json!({"type": "comment", "text": "hi"})).await?;
    assert_eq!(anon.json_of("error").await?["code"], "forbidden");
    anon.send(json!({"type": "like", "count": 1})).await?;
    assert_eq!(anon.json_of("error").await?["code"], "forbidden");
    // ... but it receives everything.
    let mut host = hub.host("r").await?;
    host.send(json!({"type": "announce", "text": "welcome all"}))
        .await?;
    assert_eq!(anon.json_of("announcement").await?["text"], "welcome all");
    hub.shutdown().await
}

#[tokio::test]
async fn a_malformed_room_id_is_400() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    assert_eq!(upgrade_status(&hub.ws_url("bad.room", "")).await, 400);
    assert_eq!(upgrade_status(&hub.ws_url(&"x".repeat(65), "")).await, 400);
    let (status, _) = hub.get("/api/rooms/bad.room", None).await?;
    assert_eq!(status, 400);
    let (status, _) = hub.get("/api/rooms/never-seen", None).await?;
    assert_eq!(status, 404);
    hub.shutdown().await
}

/// Signs an arbitrary payload with the hub's secret (claims `Authenticator::mint` refuses).
fn sign(hub: &TestHub, payload: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(hub.config.auth.secret.as_bytes()),
    )
    .expect("sign")
}

fn in_an_hour() -> u64 {
    livehub::hub::now_ms() / 1000 + 3600
}

#[tokio::test]
async fn a_host_or_viewer_token_for_every_room_is_refused() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let cmd = r#"{"type":"announce","text":"hello"}"#;
    for role in ["host", "viewer"] {
        let any = sign(
            &hub,
            json!({"sub": "h", "role": role, "room": "*", "exp": in_an_hour()}),
        );
        assert_eq!(
            upgrade_status(&hub.ws_url("r", &format!("token={any}"))).await,
            401,
            "{role}"
        );
        let (status, body) = hub.post_command("r", Some(&any), cmd).await?;
        assert_eq!(status, 401, "{role}: {body}");
        assert_eq!(
            body["error"],
            json!({"code": "unauthorized", "message": "invalid token"})
        );
    }
    // `*` stays an admin's
    let admin = sign(
        &hub,
        json!({"sub": "root", "role": "admin", "room": "*", "exp": in_an_hour()}),
    );
    let (status, _) = hub.post_command("r", Some(&admin), cmd).await?;
    assert_eq!(status, 200);
    hub.shutdown().await
}

#[tokio::test]
async fn a_token_used_before_its_nbf_is_refused() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let now = livehub::hub::now_ms() / 1000;
    let early = sign(
        &hub,
        json!({"sub": "h", "role": "host", "room": "r", "nbf": now + 600, "exp": now + 3600}),
    );
    assert_eq!(
        upgrade_status(&hub.ws_url("r", &format!("token={early}"))).await,
        401
    );
    let (status, body) = hub
        .post_command("r", Some(&early), r#"{"type":"announce","text":"hi"}"#)
        .await?;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (401, json!("token not yet valid"))
    );
    // a past nbf, and one a clock a second or two ahead would see, are fine
    for nbf in [now - 600, now + 2] {
        let ok = sign(
            &hub,
            json!({"sub": "h", "role": "host", "room": "r", "nbf": nbf, "exp": now + 3600}),
        );
        assert_eq!(
            upgrade_status(&hub.ws_url("r", &format!("token={ok}"))).await,
            101,
            "nbf {nbf}"
        );
    }
    hub.shutdown().await
}

#[tokio::test]
async fn auth_errors_are_generic_and_never_quote_the_token_library() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let other = livehub::auth::Authenticator::new("another-secret-0123456", false);
    let forged = other.mint(&livehub::auth::Claims {
        sub: "u".into(),
        name: None,
        role: Role::Host,
        room: "r".into(),
        exp: Some(in_an_hour()),
        src: None,
        aff: None,
    })?;
    let cases = [
        ("garbage".to_owned(), 401, "invalid token"),
        ("a.b.c".to_owned(), 401, "invalid token"),
        (forged, 401, "invalid token"),
        (
            sign(
                &hub,
                json!({"role": "host", "room": "r", "exp": in_an_hour()}),
            ),
            401,
            "invalid token",
        ),
        (
            sign(
                &hub,
                json!({"sub": "u", "role": "superuser", "room": "r", "exp": in_an_hour()}),
            ),
            401,
            "invalid token",
        ),
        (
            sign(
                &hub,
                json!({"sub": "not an id!", "role": "host", "room": "r", "exp": in_an_hour()}),
            ),
            401,
            "invalid token",
        ),
        (
            hub.token_with(
                Role::Host,
                "r",
                "u",
                Some(livehub::hub::now_ms() / 1000 - 120),
            ),
            401,
            "token expired",
        ),
        (hub.token(Role::Host, "elsewhere", "u"), 403, "wrong room"),
    ];
    for (token, want_status, want_message) in cases {
        let (status, body) = hub
            .post_command("r", Some(&token), r#"{"type":"announce","text":"hi"}"#)
            .await?;
        assert_eq!(
            (status, body["error"]["message"].as_str()),
            (want_status, Some(want_message)),
            "{token}: {body}"
        );
        let (status, text) = hub.get("/api/rooms/r/deals/d", Some(&token)).await?;
        assert_eq!(status, want_status, "{text}");
        let body: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(body["error"]["message"], want_message, "{text}");
    }
    hub.shutdown().await
}
