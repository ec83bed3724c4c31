//! The chain and Hub ports of a fleet that runs on a local devnet: both on this machine (127.0.0.1 or localhost),
//! different, and free when the daemon starts.

use super::{LOCAL_CHAIN_PORT, LocalError};
use crate::fleet::Fleet;
use crate::network::Network;

/// The chain and hub ports of a fleet that can run on a local devnet; public networks, hubs that are not on
/// 127.0.0.1 / localhost, and other unusable URLs are [`LocalError::Refused`] naming the fleet file and field.
pub fn local_ports(fleet: &Fleet) -> Result<(u16, u16), LocalError> {
    let file = fleet.path.display();
    if fleet.network.is_public() {
        return Err(LocalError::Refused(format!(
            "{file}: network `{}` is a public chain; `minerfleet devnet` only runs a local one: set \
             `network: \"local\"` (or \"ws://127.0.0.1:PORT\") in the fleet file",
            fleet.network
        )));
    }
    let chain_port = chain_port(&fleet.network).map_err(|why| {
        LocalError::Refused(format!(
            "{file}: network `{}` {why}: the devnet chain listens on 127.0.0.1; use `network: \"local\"` \
             (port {LOCAL_CHAIN_PORT}) or \"ws://127.0.0.1:PORT\"",
            fleet.network
        ))
    })?;
    let hub_port = hub_port(&fleet.hub).map_err(|why| {
        LocalError::Refused(format!(
            "{file}: hub `{}` {why}: the devnet serves its Hub on this machine; use e.g. \
             `hub: \"http://127.0.0.1:8765\"`",
            fleet.hub
        ))
    })?;
    if chain_port == hub_port {
        return Err(LocalError::Refused(format!(
            "{file}: the chain and the hub both use port {chain_port}: give them different ports"
        )));
    }
    Ok((chain_port, hub_port))
}

/// The devnet chain port for a network: `local` → 9944, `ws://127.0.0.1:PORT` / `ws://localhost:PORT` → PORT.
fn chain_port(network: &Network) -> Result<u16, String> {
    match network {
        Network::Local => Ok(LOCAL_CHAIN_PORT),
        Network::Custom(url) => loopback_port(url, "ws"),
        Network::Finney | Network::Test => Err("is a public chain".into()),
    }
}

/// The hub port of `http://127.0.0.1:PORT` / `http://localhost:PORT`.
fn hub_port(hub: &str) -> Result<u16, String> {
    loopback_port(hub, "http")
}

fn loopback_port(text: &str, scheme: &str) -> Result<u16, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if url.scheme() != scheme {
        return Err(format!(
            "uses {}:// but the devnet serves plain {scheme}://",
            url.scheme()
        ));
    }
    if !matches!(url.host_str(), Some("127.0.0.1" | "localhost")) {
        return Err("is not 127.0.0.1 or localhost".into());
    }
    if !matches!(url.path(), "" | "/") {
        return Err(format!("has a path ({})", url.path()));
    }
    match url.port_or_known_default() {
        Some(0) | None => Err("has no fixed port".into()),
        Some(port) => Ok(port),
    }
}

pub(super) fn check_port_free(
    what: &'static str,
    field: &'static str,
    port: u16,
) -> Result<(), LocalError> {
    match std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(LocalError::PortInUse { what, field, port })
        }
        Err(e) => Err(LocalError::Refused(format!(
            "cannot listen on 127.0.0.1:{port} (the fleet's {what} port): {e}"
        ))),
    }
}
