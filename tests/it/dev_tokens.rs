//! `/api/dev/token` answers only this machine: a loopback client that named the hub by a
//! loopback name (no DNS rebinding), and never mints admin tokens.

use crate::common;

use std::net::{IpAddr, SocketAddr};

use common::TestHub;
use livehub::protocol::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET to `addr` with exactly `headers` (a browser on a rebinding page sends its own Host);
/// the status and the JSON body.
async fn get_raw(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, Value)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(common::WAIT, stream.read_to_end(&mut response)).await??;
    let response = String::from_utf8(response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {response:?}"))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

const HOST_TOKEN: &str = "/api/dev/token?role=host&room=show&name=Ana";

#[tokio::test]
async fn a_loopback_client_naming_a_loopback_host_gets_viewer_and_host_tokens() -> anyhow::Result<()>
{
    let hub = TestHub::start().await?;
    let port = hub.addr.port().to_string();
    let auth = livehub::auth::Authenticator::new(&hub.config.auth.secret, true);
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".into(),
    ] {
        let (status, body) = get_raw(hub.addr, HOST_TOKEN, &[("Host", &host)]).await?;
        assert_eq!(status, 200, "{host}: {body}");
        let who = auth.verify(body["token"].as_str().unwrap_or_default())?;
        assert_eq!((who.role, who.name.as_str()), (Role::Host, "Ana"));
        assert!(
            who.check_host(&livehub::protocol::Id::new("show").unwrap())
                .is_ok()
        );
        assert!(
            who.check_room(&livehub::protocol::Id::new("other").unwrap())
                .is_err()
        );
    }
    let (status, body) = get_raw(
        hub.addr,
        "/api/dev/token?room=show",
        &[
            ("Host", &format!("127.0.0.1:{port}")),
            ("Origin", &format!("http://127.0.0.1:{port}")),
        ],
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        auth.verify(body["token"].as_str().unwrap_or_default())?
            .role,
        Role::Viewer
    );
    hub.shutdown().await
}

#[tokio::test]
async fn another_host_name_is_refused_so_a_rebinding_page_gets_nothing() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let port = hub.addr.port();
    for host in [
        format!("rebind.evil.example:{port}"),
        "evil.example".into(),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        for path in [HOST_TOKEN, "/api/dev/token?role=viewer&room=show"] {
            let (status, body) = get_raw(hub.addr, path, &[("Host", &host)]).await?;
            assert_eq!(status, 403, "{host} {path}: {body}");
            assert_eq!(body["error"]["code"], "forbidden", "{body}");
            assert!(body.get("token").is_none());
        }
    }
    // no Host at all (HTTP/1.0 style)
    let (status, _) = get_raw(hub.addr, HOST_TOKEN, &[]).await?;
    assert_eq!(status, 403);
    // a page elsewhere that reached the hub by its loopback name
    let (status, body) = get_raw(
        hub.addr,
        HOST_TOKEN,
        &[
            ("Host", &format!("127.0.0.1:{port}")),
            ("Origin", "https://evil.example"),
        ],
    )
    .await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("forbidden"))
    );
    hub.shutdown().await
}

#[tokio::test]
async fn admin_tokens_are_never_issued() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let host = format!("127.0.0.1:{}", hub.addr.port());
    for path in [
        "/api/dev/token?role=admin&room=show",
        "/api/dev/token?role=admin&room=*",
    ] {
        let (status, body) = get_raw(hub.addr, path, &[("Host", &host)]).await?;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("admin"),
            "{body}"
        );
    }
    let (status, _) = get_raw(
        hub.addr,
        "/api/dev/token?role=root&room=show",
        &[("Host", &host)],
    )
    .await?;
    assert_eq!(status, 400);
    hub.shutdown().await
}

/// This machine's address on its default route, if it has one (no packet is sent).
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn a_client_that_is_not_on_loopback_is_refused_whatever_host_it_names() -> anyhow::Result<()>
{
    let Some(ip) = non_loopback_ip() else {
        eprintln!(
            "skipped: this machine has no non-loopback address (see pages::tests for the check itself)"
        );
        return Ok(());
    };
    // The hub listens everywhere with dev tokens forced on (which a public bind allows only
    // with insecure_dev): the client's own address must still be loopback.
    let mut config = common::test_config();
    config.pages.dev_tokens = livehub::config::DevToggle::On;
    config.server.insecure_dev = true;
    let hub = TestHub::at("0.0.0.0:0".parse()?, config).await?;
    let port = hub.addr.port();
    let remote = SocketAddr::new(ip, port);
    let (status, body) = get_raw(
        remote,
        HOST_TOKEN,
        &[("Host", &format!("localhost:{port}"))],
    )
    .await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("forbidden")),
        "{body}"
    );
    // the same request over loopback passes
    let local = SocketAddr::from(([127, 0, 0, 1], port));
    let (status, _) = get_raw(local, HOST_TOKEN, &[("Host", &format!("localhost:{port}"))]).await?;
    assert_eq!(status, 200);
    hub.shutdown().await
}

#[tokio::test]
async fn dev_tokens_are_off_on_a_public_bind() -> anyhow::Result<()> {
    let mut config = common::test_config();
    config.server.bind = "0.0.0.0:8080".parse()?;
    assert!(!config.dev_tokens());
    // The address the hub really listens on decides.
    let hub = TestHub::at("0.0.0.0:0".parse()?, config).await?;
    let local = SocketAddr::from(([127, 0, 0, 1], hub.addr.port()));
    let (status, body) = get_raw(
        local,
        HOST_TOKEN,
        &[("Host", &format!("127.0.0.1:{}", hub.addr.port()))],
    )
    .await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    hub.shutdown().await
}
