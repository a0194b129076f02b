"""Models arrive with the call-record issue (DESIGN.md: calls/, contacts/)."""
