//! `GET [base]/websocket`: the R4 WebSocket binding of Subscriptions. The client sends
//! `bind [id]`, gets `bound [id]`, then `ping [id]` for each notification; the
//! protocol is `ember_subscriptions::Session`'s, this module only carries its text.
//! The socket runs under the grants of the request that opened it.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
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
    ws.on_upgrade(move |socket| async move {
        match access {
            Some(access) => with_access(access, serve(socket, session)).await,
            None => serve(socket, session).await,
        }
    })
}

/// Answers the client's commands and forwards its pings until either side closes.
async fn serve(mut socket: WebSocket, mut session: Session) {
    loop {
        let out = tokio::select! {
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
