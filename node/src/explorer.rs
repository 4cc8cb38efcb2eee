//! The web explorer at `/explorer`: static assets built from `explorer/` (TypeScript, Vite)
//! and compiled into the binary, so a node on a closed network serves it with no other
//! origin involved. The pages read the node's own `/v1` API; a stamp's provenance is
//! verified in the browser against a genesis the user pins (`explorer/src/verify`).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The built explorer (`explorer/dist`, made by `explorer/build`).
#[derive(rust_embed::Embed)]
#[folder = "../explorer/dist"]
struct Assets;

/// What the pages may load and talk to: their own origin, plus a design image's address
/// when the user asks to fetch and check it (`connect-src`; the image is shown from the
/// checked bytes, a `blob:`).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self' http: https:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The explorer's routes, merged into the API's router when the explorer is on.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/explorer",
            get(|| async { Redirect::permanent("/explorer/") }),
        )
        .route("/explorer/", get(|| async { asset("index.html") }))
        .route(
            "/explorer/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
}

/// One asset with its type, caching and security headers; 404 for a name not built in.
fn asset(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no such explorer file: {path}\n"),
        )
            .into_response();
    };
    let mime = file.metadata.mimetype().to_string();
    // Vite names the bundles by content hash: they never change under their name.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_explorer_is_in_the_binary_with_its_assets() {
        let index = Assets::get("index.html").expect("index.html built in");
        let html = String::from_utf8(index.data.into_owned()).unwrap();
        // Every script and style the page names is built in and local.
        let mut named = 0;
        for attribute in ["src=\"", "href=\""] {
            for part in html.split(attribute).skip(1) {
                let target = part.split('"').next().unwrap();
                if target.starts_with("data:") || target.starts_with('#') {
                    continue;
                }
                let Some(local) = target.strip_prefix("/explorer/") else {
                    panic!("index.html refers to {target} outside /explorer/");
                };
                assert!(Assets::get(local).is_some(), "{local} is not built in");
                named += 1;
            }
        }
        assert!(named >= 2, "index.html names its script and style: {html}");
        let response = asset("index.html");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(asset("nothing.js").status(), StatusCode::NOT_FOUND);
    }
}
