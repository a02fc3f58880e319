//! A minimal W3C WebDriver client over the hub's own HTTP client: enough to drive headless
//! Chromium through `chromedriver` (start a session, open pages, click, type, read, screenshot).
//! Waits poll the page's state with a deadline; nothing sleeps and hopes.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running `chromedriver`, killed when dropped.
pub struct Driver {
    pub base: String,
    child: std::process::Child,
}

async fn call(method: &str, url: &str, body: Option<Value>) -> Result<Value> {
    let (status, text) =
        livehub::http_client::request(method, url, None, body.map(|b| b.to_string())).await?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{method} {url}: {text}"))?;
    if status >= 400 {
        bail!("{method} {url}: HTTP {status}: {}", v["value"]["message"]);
    }
    Ok(v["value"].clone())
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it is ready.
    pub async fn start() -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting chromedriver (bash scripts/test.sh installs it: apt-get install chromium chromium-driver)")?;
        let d = Driver {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..100 {
            if let Ok(v) = call("GET", &format!("{}/status", d.base), None).await
                && v["ready"] == true
            {
                return Ok(d);
            }
            tokio::time::sleep(Duration::from_millis(100)).await; // polling for chromedriver to listen
        }
        bail!("chromedriver did not become ready")
    }

    /// A new headless Chromium session.
    pub async fn session(&self) -> Result<Browser> {
        let profile = std::env::temp_dir().join(format!(
            "livehub-chromium-{}-{}",
            std::process::id(),
            rand_u32()
        ));
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     // No endless pulse to redraw 60 times a second in every open page.
                     "--force-prefers-reduced-motion",
                     "--window-size=420,900", format!("--user-data-dir={}", profile.display())]
        }}}});
        let v = call("POST", &format!("{}/session", self.base), Some(caps)).await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id: {v}"))?;
        Ok(Browser {
            url: format!("{}/session/{id}", self.base),
        })
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session (its windows share nothing but cookies; each tab has its own
/// sessionStorage, so each tab is a different viewer on the pages).
pub struct Browser {
    url: String,
}

/// A phone's viewport (an iPhone 12-15 in CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);
/// A laptop's viewport.
pub const DESKTOP: (u32, u32) = (1366, 900);

impl Browser {
    /// Sizes the window so that the page's viewport (`innerWidth` x `innerHeight`) is
    /// `(width, height)` CSS pixels, e.g. [`PHONE`] or [`DESKTOP`].
    pub async fn set_viewport(&self, (width, height): (u32, u32)) -> Result<()> {
        let rect = |w: i64, h: i64| json!({"width": w, "height": h});
        let url = format!("{}/window/rect", self.url);
        call("POST", &url, Some(rect(width.into(), height.into()))).await?;
        let inner = self
            .js("return [window.innerWidth, window.innerHeight];", json!([]))
            .await?;
        let (iw, ih) = (
            inner[0].as_i64().unwrap_or(width.into()),
            inner[1].as_i64().unwrap_or(height.into()),
        );
        let (w, h) = (i64::from(width), i64::from(height));
        if (iw, ih) != (w, h) {
            call("POST", &url, Some(rect(2 * w - iw, 2 * h - ih))).await?;
        }
        Ok(())
    }

    /// Opens a URL in the current window.
    pub async fn goto(&self, url: &str) -> Result<()> {
        call(
            "POST",
            &format!("{}/url", self.url),
            Some(json!({"url": url})),
        )
        .await
        .map(|_| ())
    }

    /// Opens a new tab and switches to it; returns its handle.
    pub async fn new_tab(&self) -> Result<String> {
        let v = call(
            "POST",
            &format!("{}/window/new", self.url),
            Some(json!({"type": "tab"})),
        )
        .await?;
        let handle = v["handle"]
            .as_str()
            .ok_or_else(|| anyhow!("no handle"))?
            .to_owned();
        self.switch(&handle).await?;
        Ok(handle)
    }

    /// The current window's handle.
    pub async fn handle(&self) -> Result<String> {
        Ok(call("GET", &format!("{}/window", self.url), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Switches to a window.
    pub async fn switch(&self, handle: &str) -> Result<()> {
        call(
            "POST",
            &format!("{}/window", self.url),
            Some(json!({"handle": handle})),
        )
        .await
        .map(|_| ())
    }

    /// Runs a script in the page and returns its value.
    pub async fn js(&self, script: &str, args: Value) -> Result<Value> {
        call(
            "POST",
            &format!("{}/execute/sync", self.url),
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    async fn find(&self, css: &str) -> Result<String> {
        let v = call(
            "POST",
            &format!("{}/element", self.url),
            Some(json!({"using": "css selector", "value": css})),
        )
        .await?;
        Ok(v[ELEMENT]
            .as_str()
            .ok_or_else(|| anyhow!("no element {css}"))?
            .to_owned())
    }

    /// Waits until `css` matches a visible element, then clicks it like a user.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.wait_visible(css).await?;
        let e = self.find(css).await?;
        call(
            "POST",
            &format!("{}/element/{e}/click", self.url),
            Some(json!({})),
        )
        .await
        .map(|_| ())
        .with_context(|| format!("click {css}"))
    }

    /// Clears an input and types into it.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        self.wait_visible(css).await?;
        let e = self.find(css).await?;
        call(
            "POST",
            &format!("{}/element/{e}/clear", self.url),
            Some(json!({})),
        )
        .await?;
        call(
            "POST",
            &format!("{}/element/{e}/value", self.url),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    /// Waits until `check(page)` is true, where the page reports `state` (a JS expression).
    pub async fn wait_for(
        &self,
        what: &str,
        state: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let script = format!("try {{ return {state}; }} catch (e) {{ return null; }}");
        loop {
            let v = self.js(&script, json!([])).await?;
            if check(&v) {
                return Ok(v);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out waiting for {what}; last state {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await; // polling the page's state
        }
    }

    /// Waits until the text of `css` satisfies `pred`.
    pub async fn wait_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> Result<String> {
        let state = format!(
            "(document.querySelector({}) || {{}}).textContent",
            json!(css)
        );
        let v = self
            .wait_for(css, &state, |v| v.as_str().is_some_and(&pred))
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until `css` is on the page and visible.
    pub async fn wait_visible(&self, css: &str) -> Result<()> {
        let state = format!(
            "(() => {{ const e = document.querySelector({}); return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; }})()",
            json!(css)
        );
        self.wait_for(&format!("{css} visible"), &state, |v| v == &json!(true))
            .await
            .map(|_| ())
    }

    /// Saves a PNG screenshot of the current window.
    pub async fn screenshot(&self, path: &std::path::Path) -> Result<()> {
        use base64::Engine;
        let v = call("GET", &format!("{}/screenshot", self.url), None).await?;
        let png =
            base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        let _ = call("DELETE", &self.url, None).await;
    }
}
