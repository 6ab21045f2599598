//! The kube-proxy role: a TCP listener on every `clusterIP:port`, forwarding
//! each connection to a ready endpoint, round-robin. The outbound socket is
//! bound to the client's own address, so backends see the real client pod
//! IP (no SNAT), which any address in 127.0.0.0/8 allows.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::cache::Caches;
use super::endpoints::backends;
use super::index::slices_by_service;
use super::{AbortOnDrop, Pacer};

/// How long a connect to one backend may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One listening `clusterIP:port`.
struct Listener {
    backends: watch::Sender<Vec<SocketAddr>>,
    _task: AbortOnDrop,
}

/// The kube-proxy role's state.
pub(crate) struct KubeProxy {
    caches: Caches,
    listeners: HashMap<SocketAddr, Listener>,
    /// Addresses that failed to bind, so the log says so once.
    failed: HashSet<SocketAddr>,
}

/// The `clusterIP:port → backends` table the Services and slices call for.
fn desired(caches: &Caches) -> HashMap<SocketAddr, Vec<SocketAddr>> {
    let slices = slices_by_service(caches.slices.state());
    let mut out = HashMap::new();
    for svc in caches.services.state() {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        let ip: Option<Ipv4Addr> = spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
        let Some(ip) = ip.filter(|ip| ip.is_loopback()) else {
            continue;
        };
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().unwrap_or("TCP") != "TCP" {
                continue;
            }
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let key = (
                svc.metadata.namespace.clone().unwrap_or_default(),
                svc.metadata.name.clone().unwrap_or_default(),
            );
            let mine = slices.get(&key).map_or(&[][..], Vec::as_slice);
            let bs = backends(&svc, port, mine.iter().map(|s| &**s));
            out.insert(SocketAddr::from((ip, number)), bs);
        }
    }
    out
}

// === impl KubeProxy ===

impl KubeProxy {
    pub(crate) fn new(caches: Caches) -> Self {
        Self {
            caches,
            listeners: HashMap::new(),
            failed: HashSet::new(),
        }
    }

    /// Keeps the listeners in line with Services and slices until shutdown.
    pub(crate) async fn run(mut self, resync: Duration, shutdown: CancellationToken) {
        let mut pacer = Pacer::new(self.caches.subscribe(), resync);
        loop {
            self.reconcile().await;
            if !pacer.next(&shutdown).await {
                return;
            }
        }
    }

    async fn reconcile(&mut self) {
        let want = desired(&self.caches);
        self.listeners.retain(|addr, _| want.contains_key(addr));
        self.failed.retain(|addr| want.contains_key(addr));
        for (addr, bs) in want {
            if let Some(l) = self.listeners.get(&addr) {
                l.backends.send_if_modified(|cur| {
                    let changed = *cur != bs;
                    if changed {
                        tracing::debug!(%addr, backends = ?bs, "kube-proxy backends changed");
                        *cur = bs;
                    }
                    changed
                });
                continue;
            }
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    tracing::info!(%addr, backends = ?bs, "kube-proxy listening");
                    self.failed.remove(&addr);
                    let (tx, rx) = watch::channel(bs);
                    let task = tokio::spawn(serve(listener, rx));
                    self.listeners.insert(
                        addr,
                        Listener {
                            backends: tx,
                            _task: AbortOnDrop(task),
                        },
                    );
                }
                Err(error) => {
                    if self.failed.insert(addr) {
                        tracing::warn!(%addr, %error, "kube-proxy cannot listen");
                    }
                }
            }
        }
    }
}

/// Accepts on a ClusterIP and forwards every connection; its connections
/// end when it is dropped.
pub async fn serve(listener: TcpListener, backends: watch::Receiver<Vec<SocketAddr>>) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (client, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::debug!(%error, "kube-proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let candidates = backends.borrow().clone();
        let start = next.fetch_add(1, Ordering::Relaxed);
        conns.spawn(forward(client, peer, candidates, start));
    }
}

async fn forward(
    mut client: TcpStream,
    peer: SocketAddr,
    candidates: Vec<SocketAddr>,
    start: usize,
) {
    let n = candidates.len();
    for i in 0..n {
        let backend = candidates[(start + i) % n];
        match connect_from(peer.ip(), backend).await {
            Ok(mut upstream) => {
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            Err(error) => tracing::debug!(%backend, %error, "kube-proxy connect failed"),
        }
    }
    tracing::debug!(%peer, "kube-proxy: no reachable endpoint; closing");
}

/// Connects to `backend` from `source` (port 0), falling back to an
/// unbound socket when `source` cannot be bound.
pub async fn connect_from(source: IpAddr, backend: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Err(error) = socket.bind(SocketAddr::new(source, 0)) {
        tracing::debug!(%source, %error, "cannot bind client address; connecting unbound");
        let stream = TcpSocket::new_v4()?.connect(backend);
        return tokio::time::timeout(CONNECT_TIMEOUT, stream)
            .await
            .map_err(std::io::Error::other)?;
    }
    tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(backend))
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A backend that writes back the peer address it saw, then closes.
    async fn echo_peer(ip: [u8; 4]) -> SocketAddr {
        let l = TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..16 {
                let (mut s, peer) = l.accept().await.unwrap();
                let msg = format!("{addr} saw {}", peer.ip());
                s.write_all(msg.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    async fn ask(from: [u8; 4], to: SocketAddr) -> String {
        let mut s = connect_from(IpAddr::from(from), to).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn forwards_round_robin_and_keeps_the_client_ip() {
        let a = echo_peer([127, 1, 200, 1]).await;
        let b = echo_peer([127, 1, 200, 2]).await;
        let front = TcpListener::bind("127.96.200.1:0").await.unwrap();
        let vip = front.local_addr().unwrap();
        let (tx, rx) = watch::channel(vec![a, b]);
        let _task = AbortOnDrop(tokio::spawn(serve(front, rx)));
        let first = ask([127, 1, 200, 9], vip).await;
        let second = ask([127, 1, 200, 9], vip).await;
        assert_eq!(first, format!("{a} saw 127.1.200.9"));
        assert_eq!(second, format!("{b} saw 127.1.200.9"));
        tx.send_replace(vec![b]);
        assert_eq!(
            ask([127, 1, 200, 10], vip).await,
            format!("{b} saw 127.1.200.10")
        );
    }

    #[tokio::test]
    async fn dead_endpoint_is_skipped_and_no_endpoint_closes() {
        let dead = {
            let l = TcpListener::bind("127.1.201.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let live = echo_peer([127, 1, 201, 2]).await;
        let front = TcpListener::bind("127.96.201.1:0").await.unwrap();
        let vip = front.local_addr().unwrap();
        let (tx, rx) = watch::channel(vec![dead, live]);
        let _task = AbortOnDrop(tokio::spawn(serve(front, rx)));
        assert_eq!(
            ask([127, 1, 201, 9], vip).await,
            format!("{live} saw 127.1.201.9")
        );
        tx.send_replace(vec![]);
        assert_eq!(ask([127, 1, 201, 9], vip).await, "");
    }
}
