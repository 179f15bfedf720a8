"""Bundles: one verifiable archive of every image, binary and manifest the appliance installs.

`definition` (bundles/<name>.yaml and the resolved bundle.yaml), `build` (resolve, stage, pack),
`archive` (the tar format), `verify` (SHA256SUMS and the signature), `sign` (Ed25519 keys),
`contents` (inspect), `load` (verify, then docker load and install). DESIGN.md §4 and §7.
"""
