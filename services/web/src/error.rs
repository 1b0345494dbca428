//! What a page can fail with, and what the browser gets for it.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use quorum_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session: to the login page.
    #[error("please log in")]
    Login,
    /// Logged in, but not allowed here (a subscriber on an operator page).
    #[error("this page is for operators only")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// A form without a valid CSRF token: posted from elsewhere, or too old.
    #[error("this form has expired or did not come from Quorum's pages; reload the page and try again")]
    Csrf,
    #[error("too many attempts from here; wait a few minutes and try again")]
    TooMany,
    /// A password-reset link that is not genuine, expired or used already.
    #[error("this link has expired or was used already; ask for a new one on the login page")]
    LinkExpired,
    /// A request the page cannot answer, with what to fix.
    #[error("{0}")]
    BadRequest(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("page: {0}")]
    Template(#[from] askama::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::Login => return Redirect::to("/login").into_response(),
            WebError::Forbidden | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound | WebError::LinkExpired => StatusCode::NOT_FOUND,
            WebError::TooMany => StatusCode::TOO_MANY_REQUESTS,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Storage(_) | WebError::Template(_) => {
                tracing::error!(error = %self, "web page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match status {
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong on our side; please try again later.".into(),
            _ => self.to_string(),
        };
        let page = ErrorPage { title: status.canonical_reason().unwrap_or("Error"), message };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}
