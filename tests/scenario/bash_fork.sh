#!/usr/bin/env bash
# A fork-heavy shell under vmrun: bash running loops of subshells, command
# substitutions, pipelines and background jobs; every child is a host fork of a
# process whose malloc is vmrt (atfork handlers, independent memory).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need bash

write_workflow <<'SH'
declare -A seen
total=0
for i in $(seq 1 300); do
  v=$( (echo $((i * i % 97)) ) )
  seen[$v]=1
  total=$((total + v))
done
echo "subshells: total=$total distinct=${#seen[@]}"
for i in $(seq 1 40); do
  ( big=$(printf 'x%.0s' $(seq 1 $((i * 20)))); echo ${#big} ) &
done | sort -n | tail -3
wait
s=0
for i in $(seq 1 100); do s=$((s + $(echo "$i" | tr 0-9 a-j | wc -c))); done
echo "pipelines: $s"
x=$(for i in $(seq 1 200); do echo "line $i"; done | awk '{n += $2} END {print n}')
echo "awk: $x"
f() { if [ "$1" -le 0 ]; then echo 0; else echo $(( $1 + $(f $(($1 - 1))) )); fi; }
echo "recursive subshells: $(f 60)"
SH
compare_workflow
compare_workflow --trap sigsegv
