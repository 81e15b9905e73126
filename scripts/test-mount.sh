#!/usr/bin/env bash
# layerfs mount, on real mounts, driven with the tools users use: ls, stat, cat, cmp,
# sha256sum, getfattr, du, df, findmnt, rsync, mmap from another process, mount(8).
# Usage: scripts/test-mount.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"
tool="$here/Tests/shell/volume_tool.py"

require_fuse "the mount tests"

work=$(mktemp -d /tmp/layerfs-mount-XXXXXX)
cleanup() {
    [ -n "${fuse_mode:-}" ] && chmod "$fuse_mode" /dev/fuse
    release "${mounts[@]}"
    rm -rf "$work"
}
trap cleanup EXIT

daemon_pid() { pgrep -f -- "layerfs mount .*$1\$" | head -1; }

# ---- a volume with something of everything
v=$work/vol
"$layerfs" init --sample "$v" >/dev/null
in=$work/in15; mkdir -p "$in"
printf 'plain\n' > "$in/layer-001"
: > "$in/layer-002"                                       # an empty layer
head -c 3000000 /dev/urandom > "$in/layer-010"           # larger than one request
printf 'odd keywords\n' > "$in/layer-1000"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.keywords", rb"a\,b,c\\d,plain")' "$in/layer-1000"
setfattr -n user.frequency -v 1e-05 "$in/layer-1000"
touch -d 2023-03-04T05:06:07Z "$in"/*
"$layerfs" pack --dimension 15 --time 2024-06-01T00:00:00Z "$in" "$v/consciousness/D15" >/dev/null
"$layerfs" pack --proto --time 2024-06-01T00:00:00Z "$in" "$v/proto/draft" >/dev/null
mkdir -p "$v/consciousness/D16" "$v/consciousness/D17" "$v/temp/scratch" "$v/consciousness/.D01.pack-x"
cp "$v/consciousness/D01/index.json" "$v/consciousness/D01/region.mmap" "$v/consciousness/D16/"
printf 'XXXX' | dd of="$v/consciousness/D16/region.mmap" bs=1 seek=0 conv=notrunc 2>/dev/null   # bad magic
expected=$work/expected
python3 "$tool" expect "$v" "$expected"

# ---- mount (daemonized) and the tree
m=$(mnt_new 1)
expect "mount returns once the mount answers" "$layerfs" mount "$v" "$m"
expect "mount is listed as fuse.layerfs" mounted "$m"
expect_eq "root lists every dimension and proto, no temp or hidden" \
    "D01 D02 D03 D04 D05 D06 D07 D08 D09 D10 D11 D12 D13 D14 D15 D16 D17 proto" "$(ls "$m" | xargs)"
expect_eq "dimension lists layers sorted by id" "layer-001 layer-002 layer-010 layer-1000" "$(ls "$m/D15" | xargs)"
expect_eq "proto dimension" "layer-001 layer-002 layer-010 layer-1000" "$(ls "$m/proto/draft" | xargs)"
expect_eq "empty dimension is an empty directory" "" "$(ls -A "$m/D17")"
expect_eq "findmnt shows source and type" "$v fuse.layerfs" "$(findmnt -n -o SOURCE,FSTYPE "$m" | xargs)"
expect "mount options carry ro,nosuid,nodev" bash -c "findmnt -n -o OPTIONS '$m' | grep -q 'ro,nosuid,nodev'"

# ---- attributes
expect_eq "file mode (region.mmap's), size, blocks, links" "$(stat -c %a "$v/consciousness/D15/region.mmap") regular file 3000000 5860 1" "$(stat -c '%a %F %s %b %h' "$m/D15/layer-010")"
expect_eq "empty layer" "0 0" "$(stat -c '%s %b' "$m/D15/layer-002")"
expect_eq "directory mode (the dimension directory's)" "$(stat -c %a "$v/consciousness/D15") directory" "$(stat -c '%a %F' "$m/D15")"
expect_eq "mtime is the layer's updated_at" "$(date -d 2023-03-04T05:06:07Z +%s)" "$(stat -c %Y "$m/D15/layer-001")"
expect_eq "ctime = atime = mtime" "1 1" "$(stat -c '%X %Z %Y' "$m/D15/layer-001" | awk '{print ($1==$3), ($2==$3)}')"
expect_eq "directory mtime is the index's updated_at" "$(date -d 2024-06-01T00:00:00Z +%s)" "$(stat -c %Y "$m/D15")"
expect_eq "owner of the region" "$(stat -c %u:%g "$v/consciousness/D15/region.mmap")" "$(stat -c %u:%g "$m/D15/layer-001")"
expect_eq "du adds up" "$(( (6 + 0 + 3000000 + 13 + 511*0) ))" "$(du -b -c "$m"/D15/* | tail -1 | cut -f1)"
expect "df reports the volume read-only" bash -c "df '$m' | tail -1 | grep -q '$v'"

# ---- bytes: every layer equals the region's bytes, and its checksum
bad=0; n=0
while IFS= read -r f; do
    rel=${f#"$expected"/}; n=$((n + 1))
    cmp -s "$f" "$m/$rel" || { bad=$((bad + 1)); echo "  differs: $rel"; }
done < <(find "$expected" -type f | sort)
expect_eq "cat of every layer equals the region bytes ($n layers)" "0" "$bad"
bad=0
for f in "$m"/D*/layer-* "$m"/proto/*/layer-*; do
    want=$(getfattr --absolute-names --only-values -n user.checksum "$f" 2>/dev/null)
    got="sha256:$(sha256sum < "$f" | cut -d' ' -f1)"
    [ "$want" == "$got" ] || { bad=$((bad + 1)); echo "  checksum differs: $f"; }
done
expect_eq "sha256sum of every layer equals user.checksum" "0" "$bad"
expect_eq "reads at odd offsets" "$(dd if="$in/layer-010" bs=1 skip=2999990 2>/dev/null | od -An -tx1)" \
    "$(dd if="$m/D15/layer-010" bs=1 skip=2999990 2>/dev/null | od -An -tx1)"
expect_eq "a consumer can mmap a layer" "$(sha256sum < "$in/layer-010" | cut -d' ' -f1)" "$(python3 "$tool" mmap "$m/D15/layer-010")"

# ---- extended attributes
expect_eq "user.keywords escapes , and \\" 'a\,b,c\\d,plain' "$(getfattr --absolute-names --only-values -n user.keywords "$m/D15/layer-1000")"
expect_eq "user.frequency shortest form" "1e-05" "$(getfattr --absolute-names --only-values -n user.frequency "$m/D15/layer-1000")"
expect_eq "user.layer_id" "1000" "$(getfattr --absolute-names --only-values -n user.layer_id "$m/D15/layer-1000")"
expect_eq "empty keywords are an empty value" "" "$(getfattr --absolute-names --only-values -n user.keywords "$m/D15/layer-002")"
expect_eq "layer xattr names" "user.checksum user.frequency user.keywords user.layer_id" \
    "$(getfattr --absolute-names -d -m - "$m/D15/layer-001" | grep -o '^user\.[a-z_]*' | sort | xargs)"
expect_eq "dimension xattrs" "15|D15|2024-06-01T00:00:00Z|4" \
    "$(for a in dimension_id dimension_name updated_at layer_count; do getfattr --absolute-names --only-values -n user.$a "$m/D15"; echo -n '|'; done | sed 's/|$//')"
expect_eq "canonical dimension name" "Emotion" "$(getfattr --absolute-names --only-values -n user.dimension_name "$m/D01")"
expect_fail "unknown attribute answers ENODATA" "No such attribute" getfattr --absolute-names -n user.nothing "$m/D15/layer-001"
expect_fail "security probe answers EOPNOTSUPP (ls -l stops asking)" "Operation not supported" getfattr --absolute-names -n security.selinux "$m/D15/layer-001"
expect "size-0 probe and ERANGE handled (python os.getxattr)" python3 -c "
import os, errno
v = os.getxattr('$m/D15/layer-001', 'user.checksum')
assert v.startswith(b'sha256:') and len(v) == 71, v
assert len(os.listxattr('$m/D15/layer-001')) == 4
"
expect "ERANGE for a short buffer" python3 -c "
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(10)
r = libc.getxattr(b'$m/D15/layer-001', b'user.checksum', buf, 10)
assert r == -1 and ctypes.get_errno() == errno.ERANGE, (r, ctypes.get_errno())
r = libc.getxattr(b'$m/D15/layer-001', b'user.checksum', None, 0)
assert r == 71, r
"

# ---- a corrupt dimension beside good ones
expect_eq "corrupt dimension is an empty directory" "" "$(ls -A "$m/D16")"
expect "corrupt dimension carries user.error naming file and field" bash -c \
    "getfattr --absolute-names --only-values -n user.error '$m/D16' | grep -q 'consciousness/D16/region.mmap: header.magic'"
expect "good dimensions still serve" cmp "$m/D01/layer-001" "$expected/D01/layer-001"

# ---- read-only for everyone
expect_fail "open for writing: EROFS" "Read-only" bash -c "echo x > '$m/D15/layer-001'"
expect_fail "create: EROFS" "Read-only" touch "$m/D15/new"
expect_fail "mkdir: EROFS" "Read-only" mkdir "$m/D15/dir"
expect_fail "mknod: EROFS" "Read-only" mkfifo "$m/D15/fifo"
expect_fail "symlink: EROFS" "Read-only" ln -s x "$m/D15/link"
expect_fail "link: EROFS" "Read-only" ln "$m/D15/layer-001" "$m/D15/hard"
expect_fail "unlink: EROFS" "Read-only" rm -f "$m/D15/layer-001"
expect_fail "rmdir: EROFS" "Read-only" rmdir "$m/D17"
expect_fail "rename: EROFS" "Read-only" mv "$m/D15/layer-001" "$m/D15/layer-009"
expect_fail "truncate: EROFS" "Read-only" truncate -s 0 "$m/D15/layer-001"
expect_fail "chmod: EROFS" "Read-only" chmod 600 "$m/D15/layer-001"
expect_fail "chown: EROFS" "Read-only" chown 1:1 "$m/D15/layer-001"
expect_fail "utimes: EROFS" "Read-only" touch -d 2020-01-01 "$m/D15/layer-001"
expect_fail "setxattr: EROFS" "Read-only" setfattr -n user.x -v 1 "$m/D15/layer-001"
expect_fail "removexattr: EROFS" "Read-only" setfattr -x user.checksum "$m/D15/layer-001"
# temp/ is the volume's scratch space (the daemon's log goes there when there is no syslog).
expect_eq "nothing on disk changed" "$(cd "$v" && find . -path ./temp -prune -o -type f -newer "$expected" -print | wc -l)" "0"

# ---- stable inode numbers across mounts
inodes1=$(cd "$m" && find . -exec stat -c '%n %i' {} + | sort)
expect "unmount" "$layerfs" unmount "$m"
expect_eq "unmounted" "no" "$(mounted "$m" && echo yes || echo no)"
expect "mount again" "$layerfs" mount "$v" "$m"
inodes2=$(cd "$m" && find . -exec stat -c '%n %i' {} + | sort)
expect_eq "inode numbers are the same on every mount" "$inodes1" "$inodes2"

# ---- rsync -aX twice, then pack of the copy reproduces the volume
b=$work/backup
expect "rsync -aX from the mount" rsync -aX "$m/" "$b/"
expect_eq "second rsync transfers nothing" "0" \
    "$(rsync -aX --stats "$m/" "$b/" | awk -F': ' '/Number of regular files transferred/{print $2}')"
expect_eq "copy has the xattrs" "$(getfattr --absolute-names --only-values -n user.checksum "$m/D15/layer-010")" "$(getfattr --absolute-names --only-values -n user.checksum "$b/D15/layer-010")"
r=$work/repacked; "$layerfs" init "$r" >/dev/null
for d in D01 D15; do
    id=$((10#${d#D}))
    expect "pack $d from the copy" "$layerfs" pack --dimension $id --time "$(getfattr --absolute-names --only-values -n user.updated_at "$b/$d")" "$b/$d" "$r/consciousness/$d"
    expect "$d region is byte-identical" cmp "$v/consciousness/$d/region.mmap" "$r/consciousness/$d/region.mmap"
    expect "$d index is equal field by field" python3 -c "
import json, sys
a = json.load(open('$v/consciousness/$d/index.json')); b = json.load(open('$r/consciousness/$d/index.json'))
assert a == b, (a, b)
"
done
"$layerfs" unmount "$m"

# ---- foreground mode, SIGTERM and SIGINT unmount cleanly, --log-file and SIGHUP
f=$(mnt_new 2)
"$layerfs" mount -f --log-file "$work/fg.log" "$v" "$f" &
fg=$!
for _ in $(seq 100); do mounted "$f" && break; sleep 0.05; done
expect "foreground mount answers" ls "$f/D01"
mv "$work/fg.log" "$work/fg.log.1"
kill -HUP $fg; sleep 0.3
expect "SIGHUP reopens the log file" test -s "$work/fg.log"
expect "daemon survives SIGHUP" mounted "$f"
kill -TERM $fg; wait $fg; rc=$?
expect_eq "SIGTERM: exit 0" "0" "$rc"
expect_eq "SIGTERM: unmounted" "no" "$(mounted "$f" && echo yes || echo no)"
"$layerfs" mount "$v" "$f"
pid=$(daemon_pid "$f")
kill -INT "$pid"; for _ in $(seq 100); do mounted "$f" || break; sleep 0.05; done
expect_eq "SIGINT to the daemon unmounts" "no" "$(mounted "$f" && echo yes || echo no)"

# ---- a daemon killed with SIGKILL
"$layerfs" mount "$v" "$f"
kill -9 "$(daemon_pid "$f")"; sleep 0.2
expect_fail "dead daemon: ENOTCONN" "not connected" ls "$f"
expect_fail "mount on it refuses: already a mount" "already a mount" "$layerfs" mount "$v" "$f"
expect "unmount cleans up a dead mount" "$layerfs" unmount "$f"
expect "remount serves the volume" "$layerfs" mount "$v" "$f"
expect "remount reads" cmp "$f/D01/layer-002" "$expected/D01/layer-002"
"$layerfs" unmount "$f"

# ---- make unmount undoes make run: through layerfs, without a built layerfs, on a dead
# daemon's mount, and quietly when nothing is mounted
make_unmount() { make -s -C "$here" unmount MNT="$f" "$@"; }
"$layerfs" mount "$v" "$f"
expect "make unmount" make_unmount RELEASE="$layerfs"
expect_eq "make unmount: unmounted" "no" "$(mounted "$f" && echo yes || echo no)"
"$layerfs" mount "$v" "$f"
expect "make unmount without a built layerfs" make_unmount RELEASE=/nonexistent
expect_eq "make unmount without a built layerfs: unmounted" "no" "$(mounted "$f" && echo yes || echo no)"
"$layerfs" mount "$v" "$f"
kill -9 "$(daemon_pid "$f")"; sleep 0.2
expect "make unmount of a dead daemon's mount" make_unmount RELEASE="$layerfs"
expect_eq "make unmount of a dead daemon's mount: unmounted" "no" "$(mounted "$f" && echo yes || echo no)"
expect_eq "make unmount with nothing mounted: silent success" "0:" "$(out=$(make_unmount RELEASE="$layerfs" 2>&1); echo "$?:$out")"

# ---- errors: clear message, non-zero exit, nothing mounted
e=$(mnt_new 3)
expect_fail "source missing" "does not exist" "$layerfs" mount "$work/none" "$e"
expect_fail "source not a volume" "not a volume" "$layerfs" mount "$work/in15" "$e"
expect_fail "mountpoint missing" "mountpoint .* does not exist" "$layerfs" mount "$v" "$work/none"
expect_fail "mountpoint not a directory" "not a directory" "$layerfs" mount "$v" "$in/layer-001"
expect_fail "unknown option" "unknown mount option -o bogus" "$layerfs" mount "$v" "$e" -o ro,bogus
expect_fail "only one of SOURCE and MOUNTPOINT" "both" "$layerfs" mount "$v"
expect_eq "nothing was mounted" "no" "$(mounted "$e" && echo yes || echo no)"
expect_fail "unmount of something not mounted" "not mounted" "$layerfs" unmount "$e"

# ---- fstab form: mount(8) runs `layerfs SOURCE MNT -o ro,dev,suid,...` from its fixed PATH
installed=no
if [ ! -e /usr/local/bin/layerfs ]; then install -m 0755 "$layerfs" /usr/local/bin/layerfs && installed=yes; fi
expect "mount -t fuse.layerfs (default subcommand, -o options)" mount -t fuse.layerfs -o ro,allow_other,noatime "$v" "$e"
expect "fstab mount serves" cmp "$e/D15/layer-010" "$in/layer-010"
expect "fstab mount has allow_other" bash -c "findmnt -n -o OPTIONS '$e' | grep -q allow_other"
expect "umount(8) unmounts it" umount "$e"
expect "drop_privileges form (/dev/fd/N mountpoint)" mount -t fuse.layerfs -o ro,drop_privileges "$v" "$e"
expect "drop_privileges mount serves" cmp "$e/D01/layer-001" "$expected/D01/layer-001"
umount "$e" 2>/dev/null
[ $installed = yes ] && rm -f /usr/local/bin/layerfs

# ---- a mountpoint that is the source, or inside it, or holds it: refused (symlinks and bind
# mounts included), nothing mounted; a bind mount made later never deadlocks the daemon
o=$work/overlap; "$layerfs" init --sample "$o/vol" >/dev/null; mkdir -p "$o/bind" "$o/mnt" "$o/x"
expect_fail "mount onto the source itself: refused" "is the source .* itself" "$layerfs" mount "$o/vol" "$o/vol"
expect_fail "mount inside the source: refused" "lies inside the source" "$layerfs" mount "$o/vol" "$o/vol/consciousness/D04"
ln -s "$o/vol/consciousness" "$o/link"
expect_fail "mount inside the source through a symlink: refused" "lies inside the source" "$layerfs" mount "$o/vol" "$o/link/D04"
mount --bind "$o/vol" "$o/bind"
expect_fail "mount inside the source through a bind mount: refused" "lies inside the source" "$layerfs" mount "$o/vol" "$o/bind/consciousness/D04"
umount "$o/bind"
cp -a "$o/vol" "$o/x/vol"
expect_fail "source inside the mountpoint: refused" "lies inside the mountpoint" "$layerfs" mount "$o/x/vol" "$o/x"
expect_eq "overlaps: nothing was mounted" "0" "$(grep -c " $o" /proc/mounts)"
"$layerfs" mount "$o/vol" "$o/mnt"; mounts+=("$o/vol/consciousness/D04" "$o/vol" "$o/mnt")
mount --bind "$o/mnt" "$o/vol/consciousness/D04"
expect "mount bound inside its own source later: ls -la answers" timeout 20 ls -la "$o/mnt/D04"
expect "... that dimension carries user.error saying why" bash -c \
    "timeout 10 getfattr --absolute-names --only-values -n user.error '$o/mnt/D04' | grep -q 'own mountpoint'"
expect "... the other dimensions serve" timeout 10 grep -q "Emotion" "$o/mnt/D01/layer-001"
umount "$o/vol/consciousness/D04"
mount --bind "$o/mnt" "$o/vol"
expect "mount bound over its own source later: still serves the volume" timeout 20 grep -q "Cognition" "$o/mnt/D02/layer-001"
umount "$o/vol"
expect "overlaps: unmount" "$layerfs" unmount "$o/mnt"

# ---- what the mount shows and does on request: owners and modes, readahead, auto_unmount,
# a log file that cannot be written
p=$(mnt_new 4)
"$layerfs" mount --uid 1234 --gid 5678 --file-mode 0600 --dir-mode 0700 -o umask=027 --readahead-kb 2048 \
    --log-file "$work/p.log" "$v" "$p"
expect_eq "--uid/--gid/--file-mode/--dir-mode/umask: layer" "1234 5678 600" "$(stat -c '%u %g %a' "$p/D15/layer-001")"
expect_eq "--uid/--gid/--file-mode/--dir-mode/umask: directory" "1234 5678 700" "$(stat -c '%u %g %a' "$p/D15")"
sleep 0.5
expect_eq "--readahead-kb 2048 is applied" "2048" "$(cat /sys/class/bdi/$(mountpoint -d "$p")/read_ahead_kb)"
"$layerfs" unmount "$p"
expect_fail "uid out of range" "out of range" "$layerfs" mount "$v" "$p" -o uid=4294967295
expect_fail "a mode that is not octal" "not a whole number" "$layerfs" mount "$v" "$p" --file-mode 0988
expect_fail "a log file that cannot be written: refused before mounting" "cannot write the log file" \
    "$layerfs" mount --log-file /nonexistent/dir/log "$v" "$p"
expect_eq "a log file that cannot be written: nothing mounted" "no" "$(mounted "$p" && echo yes || echo no)"
"$layerfs" mount --auto-unmount "$v" "$p"
kill -9 "$(daemon_pid "$p")"
for _ in $(seq 50); do mounted "$p" || break; sleep 0.1; done
expect_eq "--auto-unmount: the daemon killed, the mount goes by itself" "no" "$(mounted "$p" && echo yes || echo no)"
if [ -S /dev/log ]; then
    skip "no syslog: the daemon logs to temp/layerfs.log" "this machine has a syslog socket"
else
    out=$("$layerfs" mount "$v" "$p" 2>&1)
    expect "no syslog: the mount command says where the log goes" grep -q "logs to $v/temp/layerfs.log" <<<"$out"
    expect "no syslog: the daemon logs there" grep -q "mounted $v on $p" "$v/temp/layerfs.log"
    "$layerfs" unmount "$p"
fi

# ---- an unprivileged user: mounts a volume of theirs, backs it up with rsync -aX, removes a
# cp -a copy, sees a dimension they cannot read as failed (with the errno), not as empty
user=layerfs-test-mount
if id "$user" >/dev/null 2>&1; then made_user=no; else useradd -M -d /nonexistent -s /bin/sh "$user" && made_user=yes; fi
as_user() { setpriv --reuid="$user" --regid="$user" --clear-groups -- "$@"; }
# Users may open /dev/fuse on a desktop Debian (udev makes it 0666); containers often make it
# 0600. The user's refusal is checked first, then the device opened to users for the rest.
u=$work/user; mkdir -p "$u"; chmod 755 "$work"
"$layerfs" init --sample "$u/vol" >/dev/null
mkdir -p "$u/mnt" "$u/backup"
chown -R "$user:$user" "$u"
chown root:root "$u/vol/consciousness/D05"; chmod 700 "$u/vol/consciousness/D05"
fuse_mode=$(stat -c %a /dev/fuse)
if [ "$fuse_mode" != 666 ]; then
    expect_fail "user: /dev/fuse not usable: refused with the reason" "/dev/fuse is not usable by this user" \
        as_user "$layerfs" mount "$u/vol" "$u/mnt"
    chmod 666 /dev/fuse
fi
"$layerfs" init "$work/private/vol" >/dev/null; chmod 700 "$work/private"
expect_fail "user: a source they cannot read: permission denied, no init advice" "^layerfs: source .*: Permission denied$" \
    as_user "$layerfs" mount "$work/private/vol" "$u/mnt"
chmod 755 "$work/private"; chmod 700 "$work/private/vol"
expect_fail "user: a volume they cannot read: permission denied" "^layerfs: source .*: permission denied" \
    as_user "$layerfs" mount "$work/private/vol" "$u/mnt"
expect "user: mounts their volume" as_user "$layerfs" mount --log-file "$u/log" "$u/vol" "$u/mnt"
mounts+=("$u/mnt")
expect "user: rsync -aX off the mount" as_user rsync -aX --exclude D05 "$u/mnt/" "$u/backup/"
expect_eq "user: a second rsync -aX transfers nothing" "0" \
    "$(as_user rsync -aXi --exclude D05 "$u/mnt/" "$u/backup/" | wc -l)"
expect_eq "user: the copy keeps the volume's modes" "$(stat -c %a "$u/vol/consciousness/D01/region.mmap")" "$(stat -c %a "$u/backup/D01/layer-001")"
expect "user: cp -a then rm -rf of the copy" as_user bash -c "cp -a '$u/mnt/D01' '$u/copy' && rm -rf '$u/copy'"
expect "user: an unreadable dimension carries user.error with the errno" bash -c \
    "setpriv --reuid=$user --regid=$user --clear-groups -- getfattr --absolute-names --only-values -n user.error '$u/mnt/D05' | grep -q 'Permission denied'"
expect_fail "user: unmount of root's mount is refused clearly" "mounted by another user|not mounted|cannot unmount" \
    as_user "$layerfs" unmount "$e"
as_user sh -c "cd '$u/mnt/D01' && exec sleep 3" &
sleep 0.5
expect_fail "user: unmount of a busy mount names the process" "busy .*pid [0-9]+ \(sleep" as_user "$layerfs" unmount "$u/mnt"
wait
expect "user: unmounts" as_user "$layerfs" unmount "$u/mnt"
[ "$made_user" = yes ] && userdel "$user" 2>/dev/null
chmod "$fuse_mode" /dev/fuse

finish
