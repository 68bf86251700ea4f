//! The chat example's browser client (examples/chat_web/): one page, its script and its
//! style sheet, built into the binary and served on the gateway's port at `GET /`,
//! `GET /app.js` and `GET /style.css` (docs/protocols/chat.md, The browser client).

use postern::{Request, Response};

/// Only this origin's own script, style and WebSocket; no inline code, no frames, no forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Path → (Content-Type, body).
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../chat_web/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_str!("../chat_web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../chat_web/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../chat_web/style.css"),
    ),
];

/// The answer to a plain HTTP request: an asset for `GET` of its path, `405` for another
/// method on one, `404` elsewhere.
pub fn answer(request: &Request<'_, '_>) -> Response {
    let Some(&(_, content_type, body)) = ASSETS.iter().find(|(p, ..)| *p == request.path()) else {
        return Response::text(404, "not found\n");
    };
    if request.method() != "GET" {
        return Response::text(405, "GET only\n").header("Allow", "GET");
    }
    Response::new(200)
        .header("Content-Type", content_type)
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header("Cache-Control", "no-cache")
        .body(body.as_bytes())
}
