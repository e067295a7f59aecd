//! Every connection onecard's servers accept (the gateway's, the catalog API's) sends its
//! answers at once (`TCP_NODELAY`).
//!
//! Why: axum's `serve` leaves Nagle's algorithm on. With it, an answer written while an
//! earlier answer on the same connection is still unacknowledged is held back until the
//! client acknowledges — and a client with nothing to send delays its acknowledgement (on
//! Linux by 40 ms at most, or until its next request). A venue controller that sends its
//! requests back to back on one kept-open connection (HTTP/1.1 pipelining) then gets each
//! answer only when it sends its next request. Session 16's load tool, which pipelines when
//! every connection is busy, measured exactly that: after a 0.5 s stall had left every
//! connection with a request waiting, every later answer came 9.9 ms late — the time until
//! that connection's next request — for the rest of the phase, on a machine 30 % idle.

use std::net::SocketAddr;

use axum::serve::{Listener, ListenerExt as _};
use tokio::net::{TcpListener, TcpStream};

/// `listener`, with `TCP_NODELAY` set on every connection it accepts.
pub fn answering_at_once(listener: TcpListener) -> impl Listener<Io = TcpStream, Addr = SocketAddr> {
    listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            // The connection still works; its answers may wait for the client's acknowledgements.
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_addr = plain.local_addr().unwrap();
        let mut listener = answering_at_once(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = Listener::accept(&mut listener).await;
        assert!(accepted.nodelay().unwrap());
        // What axum's listener does without it: the default this module exists to change.
        let _client = TcpStream::connect(plain_addr).await.unwrap();
        let (accepted, _) = Listener::accept(&mut { plain }).await;
        assert!(!accepted.nodelay().unwrap());
    }
}
