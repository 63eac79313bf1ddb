//! Photo evidence: what happens to an uploaded photo once its bytes are complete.

pub mod image;
