#!/usr/bin/env bash
# Makes the self-contained worker bundle that runs inside a PostgreSQL container, whose image
# lacks the card's libraries, as archive_command and restore_command:
#   hack/bundle.sh BINARY OUT   ->  OUT/bin/backstop and OUT/lib/*.so.*
# BINARY is the worker built with --static-swift-stdlib. Every shared library it loads beyond
# glibc's own (libcurl and its dependencies, libpq, OpenSSL, libyaml, zstd, zlib …) is copied
# into OUT/lib; the binary finds them through an $ORIGIN-relative run path (DT_RPATH, which
# also serves the libraries' own dependencies), so OUT can be copied anywhere: an init
# container copies it into an emptyDir mounted into the PostgreSQL container. glibc comes from
# the PostgreSQL image, which any Debian-based one has in a version at least as new.
set -euo pipefail
[ $# = 2 ] || { echo "usage: hack/bundle.sh BINARY OUT" >&2; exit 64; }
binary=$1
out=$2
command -v patchelf >/dev/null || { echo "hack/bundle.sh: patchelf is missing; run hack/install-deps.sh" >&2; exit 1; }
rm -rf "$out"
install -d "$out/bin" "$out/lib"
install -m 0755 "$binary" "$out/bin/backstop"
# Debug sections are a quarter of the binary; symbols stay, for crash backtraces.
strip --strip-debug "$out/bin/backstop"
# glibc's parts stay the host's: they must match its dynamic loader.
glibc='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libanl|libnsl|libnss_[a-z]+)\.so'
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r name path; do
    if [[ "$name" =~ $glibc ]]; then continue; fi
    cp -L "$path" "$out/lib/$name"
    chmod 0644 "$out/lib/$name"
    patchelf --set-rpath '$ORIGIN' "$out/lib/$name"
done
if ldd "$binary" | grep -q 'not found'; then
    echo "hack/bundle.sh: $binary has unresolved libraries:" >&2
    ldd "$binary" | grep 'not found' >&2
    exit 1
fi
patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$out/bin/backstop"
echo "hack/bundle.sh: $out: bin/backstop and $(ls "$out/lib" | wc -l) libraries, $(du -sh "$out" | cut -f1)"
