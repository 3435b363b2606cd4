#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/check-src.sh: the house rules for library code that the compiler does
# not enforce (STYLE.md 2.8, in the manner of curl's checksrc). It scans the
# C files under src/ (or the files and folders given as arguments) and
# rejects:
#   - unbounded or unsafe string functions: strcpy strcat sprintf vsprintf
#     gets strtok strncpy atoi atol;
#   - raw allocation (malloc calloc realloc free strdup) outside
#     src/base/alloc.c: the library allocates through loom__malloc & co;
#   - printing and dying (printf fprintf puts exit abort, and their close
#     relatives): the library never prints, exits or aborts.
# Comments, string and character literals are ignored. Calls through struct
# members (a->free(...), hooks.malloc(...)) are not calls of the libc
# function and are allowed. tools/ (the CLI, later the daemon) may print and
# exit and is not checked.
#
# Usage: tools/check-src.sh [FILE|DIR]...      (default: src)
# Prints file:line: message for every violation; exits 1 if there is any,
# 2 on a usage error, 0 when clean.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "$#" -eq 0 ]; then
    set -- src
fi

files=()
for arg in "$@"; do
    if [ -d "$arg" ]; then
        while IFS= read -r -d '' f; do
            files+=("$f")
        done < <(find "$arg" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
    elif [ -f "$arg" ]; then
        files+=("$arg")
    else
        echo "check-src: no such file or directory: $arg" >&2
        exit 2
    fi
done

if [ "${#files[@]}" -eq 0 ]; then
    echo "check-src: no C files to check"
    exit 0
fi

perl -e '
use strict;
use warnings;

my %why = (
    strcpy   => "unbounded copy; use memcpy with a checked length",
    strcat   => "unbounded append; use the loom buffer helpers",
    sprintf  => "unbounded format; use snprintf and check the result",
    vsprintf => "unbounded format; use vsnprintf and check the result",
    gets     => "unbounded read",
    strtok   => "hidden global state; scan the bytes explicitly",
    strncpy  => "may leave the result unterminated; use memcpy",
    atoi     => "no error reporting; parse with strtol and check",
    atol     => "no error reporting; parse with strtol and check",
);
my @unsafe = sort keys %why;
my @alloc  = qw(malloc calloc realloc free strdup strndup);
my @output = qw(printf fprintf vprintf vfprintf puts fputs putchar perror
                exit _Exit abort);

# A call of NAME: not preceded by an identifier character, "." or "->".
sub call_re {
    my $alt = join "|", map { quotemeta } @_;
    return qr/(?<![\w.>])($alt)\s*\(/;
}
my $unsafe_re = call_re(@unsafe);
my $alloc_re  = call_re(@alloc);
my $output_re = call_re(@output);

# Replaces comments and string/char literals by spaces, keeping newlines so
# line numbers survive.
sub strip {
    my ($s) = @_;
    $s =~ s{
        ( /\*.*?\*/ | //[^\n]* | "(?:\\.|[^"\\\n])*" | \x27(?:\\.|[^\x27\\\n])*\x27 )
    }{
        my $m = $1; $m =~ s/[^\n]/ /g; $m
    }gsex;
    return $s;
}

my $bad = 0;
for my $file (@ARGV) {
    open(my $fh, "<", $file) or die "check-src: $file: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    my $is_alloc = ($file =~ m{(^|/)src/base/alloc\.c$});
    my @lines = split /\n/, strip($text), -1;
    for my $i (0 .. $#lines) {
        my $l = $lines[$i];
        my $at = sprintf("%s:%d", $file, $i + 1);
        while ($l =~ /$unsafe_re/g) {
            print "$at: banned function $1(): $why{$1}\n";
            $bad++;
        }
        if (!$is_alloc) {
            while ($l =~ /$alloc_re/g) {
                print "$at: raw $1() outside src/base/alloc.c: use loom__malloc/loom__realloc/loom__free\n";
                $bad++;
            }
        }
        while ($l =~ /$output_re/g) {
            print "$at: $1() in library code: the library never prints, exits or aborts; return an error code\n";
            $bad++;
        }
    }
}
if ($bad) {
    print STDERR "check-src: $bad violation(s)\n";
    exit 1;
}
printf "check-src: %d file(s) clean\n", scalar @ARGV;
' "${files[@]}"
