//! `GET [base]/websocket`: the R4 WebSocket binding of Subscriptions. The client sends
//! `bind [id]`, gets `bound [id]`, then `ping [id]` for each notification; the
//! protocol is `ember_subscriptions::Session`'s, this module only carries its text.
//! The socket runs under the grants of the request that opened it, and is closed
//! (code 1008, policy violation) when the token that brought them expires.

use axum::Router;
use axum::extract::State;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use ember_repo::access::{current_access, with_access};
use ember_subscriptions::Session;

use crate::AppState;

/// The path under the FHIR base.
pub(crate) const PATH: &str = "/websocket";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(upgrade))
}

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let access = current_access();
    let session = state.subscriptions.session(state.repo.clone());
    let ends = access.as_ref().and_then(|a| a.expires_at()).map(deadline);
    ws.on_upgrade(move |socket| async move {
        match access {
            Some(access) => with_access(access, serve(socket, session, ends)).await,
            None => serve(socket, session, ends).await,
        }
    })
}

/// The moment of `expires` (seconds since the epoch) on the runtime's clock.
fn deadline(expires: u64) -> tokio::time::Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(expires).saturating_sub(now);
    tokio::time::Instant::now() + left
}

/// Answers the client's commands and forwards its pings until either side closes or
/// the grants end (`ends`).
async fn serve(mut socket: WebSocket, mut session: Session, ends: Option<tokio::time::Instant>) {
    let expiry = async {
        match ends {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    loop {
        let out = tokio::select! {
            () = &mut expiry => {
                let frame = CloseFrame {
                    code: close_code::POLICY,
                    reason: "the token has expired".into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => session.command(text.as_str()).await,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            Some(ping) = session.next() => ping,
        };
        if socket.send(Message::Text(out.into())).await.is_err() {
            return;
        }
    }
}
