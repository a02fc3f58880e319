//! `livehub init`: writes a production configuration file holding only the keys that differ
//! from the development defaults, with a fresh random token secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

/// Arguments of `livehub init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the configuration.
    #[arg(default_value = "livehub.toml")]
    path: PathBuf,
    /// Replace the file if it exists (its secret is lost: tokens it signed stop working).
    #[arg(long)]
    force: bool,
}

/// Bytes of randomness in a generated `auth.secret` (written as hex).
pub const SECRET_BYTES: usize = 32;

/// Runs `livehub init`.
pub fn run(args: InitArgs) -> anyhow::Result<()> {
    write_config(&args.path, args.force)?;
    println!(
        "wrote {0}; run the hub with: livehub serve --config {0}",
        args.path.display()
    );
    Ok(())
}

/// Writes a fresh production configuration to `path`, refusing to replace a file unless
/// `force`. The file is readable by its owner only: it holds the token secret.
fn write_config(path: &Path, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists; pass --force to replace it (its auth.secret is then lost)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to its owner", path.display()))?;
    }
    file.write_all(production_toml(&random_secret()).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// [`SECRET_BYTES`] bytes from a cryptographically secure generator (`rand`'s thread RNG,
/// seeded by the operating system), as hex.
fn random_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The production configuration with `secret`.
fn production_toml(secret: &str) -> String {
    format!(
        r#"# livehub production configuration, written by `livehub init`.
#
# Run the hub with it:  livehub serve --config THIS_FILE
# It holds only what differs from the built-in defaults (config/default.toml documents every
# key); LIVEHUB_SECTION__KEY environment variables override it, e.g. LIVEHUB_REDIS__URL=... .
# Keep this file private: anyone who reads auth.secret can mint host and admin tokens.

[server]
# Listen on every interface (put a TLS-terminating proxy in front of it).
bind = "0.0.0.0:8080"
# FILL THIS IN: the origins of the pages that open WebSockets, e.g.
# ["https://shop.example.com"]. An upgrade from any other Origin gets 403; [] allows any origin.
allowed_origins = []

[auth]
# HS256 token secret ({SECRET_BYTES} random bytes, hex). Your backend signs viewer and host
# tokens with it (or `livehub token --config THIS_FILE ...`). Changing it voids every token.
secret = "{secret}"
# Connections without a token are refused with 401.
allow_anonymous = false
# Tokens must carry `exp`.
require_exp = true

[pages]
# /api/dev/token is off: the pages get their tokens from your site.
dev_tokens = false

[inventory]
# Stock lives in Redis, so every hub node sells from the same units.
backend = "redis"

[redis]
url = "redis://127.0.0.1:6379"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_configuration_is_production_ready() {
        let secret = random_secret();
        assert_eq!(secret.len(), 2 * SECRET_BYTES);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(secret, random_secret());
        let path =
            std::env::temp_dir().join(format!("livehub-init-unit-{}.toml", std::process::id()));
        std::fs::write(&path, production_toml(&secret)).unwrap();
        let c = crate::config::Config::load(Some(&path), std::iter::empty());
        std::fs::remove_file(&path).unwrap();
        let c = c.unwrap();
        assert_eq!(c.auth.secret, secret);
        assert!(!c.is_loopback());
        assert!(c.exposure_problems().is_empty());
        assert!(!c.allow_anonymous() && c.require_exp() && !c.dev_tokens());
        assert_eq!(c.inventory.backend, crate::config::InventoryBackend::Redis);
    }
}
