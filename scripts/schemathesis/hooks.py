"""Schemathesis hooks for FieldGrid: photo chunks are raw bytes
(`application/offset+octet-stream`), which schemathesis cannot make by itself."""

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type(
    "application/offset+octet-stream",
    st.binary(min_size=0, max_size=2048),
)
