#!/usr/bin/env bash
# Everyday tools under vmrun: perl (hashes, regexes, sort, sprintf), awk, sed,
# sort/uniq/join pipelines, tar + gzip, find; all must match the native run.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need perl awk sed sort uniq tar gzip find

write_workflow <<'SH'
set -e
perl -e '
  srand(42); my %h; my @w;
  for my $i (1..200000) { my $k = join "", map { chr(97 + int(rand(8))) } 1..(1 + $i % 5); $h{$k}++; push @w, $k if $i % 10 == 0; }
  my @top = (sort { $h{$b} <=> $h{$a} || $a cmp $b } keys %h)[0..9];
  printf "%s %d\n", $_, $h{$_} for @top;
  my $s = join ",", sort @w; my @m = ($s =~ /(a[bc]+d)/g);
  print scalar(keys %h), " ", length($s), " ", scalar(@m), "\n";
'
seq 1 50000 | awk '{ a[$1 % 1000] += $1 } END { for (k in a) s += a[k] * k; print s, length(a) }'
seq 1 30000 | sed -e 's/\(.\)\(.\)/\2\1/' -e '/7/d' | sort | uniq -c | sort -rn | head -5
seq 1 5000 | awk '{print $1, $1 * 2}' > a.txt
seq 1 3 5000 | awk '{print $1, $1 * 3}' > b.txt
join a.txt b.txt | tail -2
mkdir -p tree/x/y
for i in $(seq 1 50); do seq $i 1000 > tree/x/f$i; done
tar -cf t.tar --sort=name --mtime=2024-01-01 --owner=0 --group=0 --numeric-owner tree
gzip -n -9 < t.tar | sha256sum
find tree -type f | sort | head -3
find tree -type f | wc -l
SH
compare_workflow
