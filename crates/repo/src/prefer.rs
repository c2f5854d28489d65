//! How a client wants write results shaped: `Prefer: return=…`, and the status lines
//! of Bundle entry responses.

/// What a client asked to get back from a write (`Prefer: return=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefer {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// `"404 Not Found"` and friends, for Bundle entry responses.
pub(crate) fn status_line(code: u16) -> String {
    let reason = match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        422 => "Unprocessable Entity",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!("{code} {reason}")
}
