"""Building the artifacts the platform runs: Go binaries from module source, and (with the images
issue) container images from package sources. Everything built is cached under the user cache dir.
"""
