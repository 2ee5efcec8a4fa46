/**
 * Walks a tenant tree by descriptor and prints every file's extended attributes (ACLs included) exactly as
 * `getfattr --recursive --dump --physical --no-dereference --match=- --encoding=base64` would, so `DumpBlockReader`
 * and `setfattr --restore` read it unchanged. getfattr walks by path: a tenant swapping a directory for a symlink
 * between two of its steps made root read the attributes of files outside the site into the site's backup (and a
 * restore then handed them to the tenant). This walk can not be redirected:
 *
 * - each directory is opened `O_RDONLY|O_DIRECTORY|O_NOFOLLOW` from its parent's descriptor and listed through its
 *   own descriptor (`os.scandir(fd)`); a directory swapped for a link between listing and opening fails to open and is
 *   skipped with a warning;
 * - a directory's attributes are read from its descriptor; any other entry's by its bare name with the parent's
 *   descriptor as the working directory (`fchdir`), without following it, so a link's own attributes are read, never
 *   its target's, and nothing is ever opened (a FIFO or device cannot block it).
 *
 * Output, like getfattr: pre-order, entries in directory order, one block per file that has an attribute, attribute
 * names sorted bytewise, `\n`, `\r` and `\` in file names (and also `=` in attribute names) as three octal digits,
 * values `0s<base64>` (`0s` when empty). Problems go to stderr, one line each, and make the exit status 1; the
 * input is JSON on stdin: `{"root": ..., "paths": [...], "exclude": [...], "symlinks_only": bool}`, paths canonical and
 * relative to root. With `symlinks_only`, only symlinks' blocks are printed (known from the listing's d_type, no call
 * per other entry).
 * Python because it is on every machine duplicity runs on and has `dir_fd`, `scandir(fd)` and `*xattr` built in.
 */
export const ATTRIBUTE_WALKER_SCRIPT = String.raw`
import base64, errno, io, json, os, resource, select, struct, subprocess, sys, traceback

# Exit 1 means "some entries could not be read"; anything unexpected must fail the capture instead (Python's own
# status for an uncaught exception is also 1).
def crash(kind, value, tb):
    traceback.print_exception(kind, value, tb)
    sys.stderr.flush()
    os._exit(2)
sys.excepthook = crash

req = json.loads(sys.stdin.read())
out = open(sys.stdout.fileno(), 'wb', buffering=1 << 17, closefd=False)
err = open(sys.stderr.fileno(), 'wb', buffering=0, closefd=False)
exclude = set(os.fsencode(p) for p in req['exclude'])
links_only = bool(req.get('symlinks_only'))
# Processes that share the walk of one path (see parallel_walk); 1 walks in this process alone.
workers = max(1, int(req.get('workers', 1)))
# How many subtrees parallel_walk aims to cut the walk into: enough that the workers finish at about the same time.
TASK_TARGET = max(1, int(req.get('tasks', 8 * workers)))
# Subtrees are cut from at most this many levels below a path, and never from a directory with more subdirectories
# than MAX_SPLIT_DIRS (each subtree holds a descriptor until a worker walks it).
MAX_SPLIT_LEVELS = 8
MAX_SPLIT_DIRS = 256
# Tests ask for a line on stderr saying how a walk was split (it is not a warning: the exit status stays).
trace_split = bool(req.get('trace_split'))
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FS_ENCODING = sys.getfilesystemencoding()
status = 0

# Two descriptors per open level (the directory and its listing); keep well inside the limit.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = hard
except (ValueError, OSError):
    pass
MAX_DEPTH = max(16, min(100000, (soft - 32) // 2))

def warn(path, message):
    global status
    status = 1
    err.write(b'attribute-walker: ' + path + b': ' + message.encode('utf-8', 'replace') + b'\n')

def quote(raw, chars):
    if not any(c in raw for c in chars):
        return raw
    return b''.join(b'\\%03o' % b if b in chars else bytes((b,)) for b in raw)

NAME_CHARS = b'\\\n\r'
ATTR_CHARS = b'\\\n\r='

def dump(path, target, is_fd):
    try:
        names = os.listxattr(target) if is_fd else os.listxattr(target, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            warn(path, e.strerror)
        return
    if not names:
        return
    lines = []
    for name in sorted(names, key=os.fsencode):
        try:
            value = os.getxattr(target, name) if is_fd else os.getxattr(target, name, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENODATA:
                warn(path, e.strerror)
            continue
        lines.append(quote(os.fsencode(name), ATTR_CHARS) + b'=0s' + base64.b64encode(value) + b'\n')
    if lines:
        out.write(b'# file: ' + quote(path, NAME_CHARS) + b'\n' + b''.join(lines) + b'\n')

def dump_dir(path, fd):
    # A directory's own attributes; none with symlinks_only, whose engine keeps directories' attributes itself.
    if not links_only:
        dump(path, fd, True)

def open_below(fd, parts):
    """A new descriptor of the directory reached from fd through parts, each opened O_NOFOLLOW from the one before it:
    a component that is a link (or not a directory) raises OSError, and no descriptor is left open."""
    fd = os.dup(fd)
    try:
        for part in parts:
            next_fd = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except OSError:
        os.close(fd)
        raise
    return fd

def open_child(fd, name, child):
    # A subdirectory of an opened directory, O_NOFOLLOW; -1 (with a warning) when it is no longer a directory.
    try:
        return os.open(name, DIR_FLAGS, dir_fd=fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            warn(child, 'was replaced by something that is not a directory (a symlink?) while being read; skipped')
        elif e.errno == errno.ENOENT:
            warn(child, 'vanished while being read')
        else:
            warn(child, e.strerror)
        return -1

def captured(work, *args):
    # What work(*args) prints, as bytes, instead of printing it.
    global out
    saved, out = out, io.BytesIO()
    try:
        work(*args)
        return out.getvalue()
    finally:
        out = saved

def inside_exclude(rel):
    return any(e == b'.' or rel == e or rel.startswith(e + b'/') for e in exclude)

def walk(top_fd, top_path):
    """Pre-order walk below an opened directory whose own block is already printed; closes top_fd."""
    # The loop body runs once per file of the site (millions): it avoids per-entry calls it does not need (a plain
    # for over the listing, names encoded only for entries it keeps).
    stack = []
    cwd = -1
    def enter(fd, path):
        try:
            stack.append((fd, path, os.scandir(fd)))
        except OSError as e:
            warn(path, e.strerror)
            os.close(fd)
    enter(top_fd, top_path)
    while stack:
        fd, path, entries = stack[-1]
        prefix = b'' if path == b'.' else path + b'/'
        below = None
        try:
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                name = entry.name.encode(FS_ENCODING, 'surrogateescape')
                # getfattr prints the root's entries without a leading './'.
                child = prefix + name
                if exclude and child in exclude:
                    continue
                if not is_dir:
                    # Relative to the opened directory made the working one: one lookup of the name itself, no path
                    # walked (and about twice as fast as going through /proc/self/fd).
                    if cwd != fd:
                        os.fchdir(fd)
                        cwd = fd
                    dump(child, name, False)
                    continue
                child_fd = open_child(fd, name, child)
                if child_fd < 0:
                    continue
                dump_dir(child, child_fd)
                if len(stack) >= MAX_DEPTH:
                    warn(child, 'is nested too deep; what lies below it was not read')
                    os.close(child_fd)
                    continue
                below = (child_fd, child)
                break
        except OSError as e:
            warn(path, e.strerror)
            below = None
        if below is not None:
            # The listing stays open where it stopped; the walk comes back to it after the directory below.
            enter(*below)
            continue
        entries.close()
        os.close(fd)
        stack.pop()
        cwd = -1  # the number may be reused by the next directory opened

def is_plain_dir(entry):
    # As in walk(): an entry that cannot be looked at (it vanished) is not walked into.
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False

def expand(fd, path):
    """The entries of an opened directory (its own block already printed) as walk() would print them, in order: bytes
    for the blocks printed now (entries that are not directories, each subdirectory's own block) and (fd, path) for
    each subdirectory, opened, still to walk. Closes fd. None, with nothing opened and fd kept, for a directory with
    more than MAX_SPLIT_DIRS subdirectories."""
    prefix = b'' if path == b'.' else path + b'/'
    try:
        with os.scandir(fd) as listing:
            entries = [(entry, is_plain_dir(entry)) for entry in listing]
    except OSError as e:
        warn(path, e.strerror)
        os.close(fd)
        return []
    if sum(1 for _, is_dir in entries if is_dir) > MAX_SPLIT_DIRS:
        return None
    parts = []
    os.fchdir(fd)
    for entry, is_dir in entries:
        name = entry.name.encode(FS_ENCODING, 'surrogateescape')
        child = prefix + name
        if exclude and child in exclude:
            continue
        if not is_dir:
            parts.append(captured(dump, child, name, False))
            continue
        child_fd = open_child(fd, name, child)
        if child_fd >= 0:
            parts.append(captured(dump_dir, child, child_fd))
            parts.append((child_fd, child))
    os.close(fd)
    return parts

def parallel_walk(top_fd, top_path):
    """walk(), shared by forked worker processes, printing the same bytes in the same order. The first levels are
    read here and cut into subtrees (each an opened directory, so a directory swapped for a link afterwards changes
    nothing); the workers take subtrees from a queue as they finish one, and send back what each printed, which is
    put in its place. Closes top_fd."""
    global status
    parts = [(top_fd, top_path)]
    for _ in range(MAX_SPLIT_LEVELS):
        tasks = sum(1 for part in parts if type(part) is tuple)
        if tasks == 0 or tasks >= TASK_TARGET:
            break
        grown, expanded_any = [], False
        for part in parts:
            cut = expand(*part) if type(part) is tuple and tasks < TASK_TARGET else None
            if cut is None:
                grown.append(part)
                continue
            expanded_any = True
            tasks += sum(1 for piece in cut if type(piece) is tuple) - 1
            grown.extend(cut)
        parts = grown
        if not expanded_any:
            break
    tasks = [part for part in parts if type(part) is tuple]
    if len(tasks) < 2:
        for part in parts:
            if type(part) is tuple:
                walk(*part)
            else:
                out.write(part)
        return
    # Every index is in the queue before a worker starts (4 bytes each, far below the pipe's capacity): each read of
    # 4 bytes takes one, and an empty queue reads as its end.
    if trace_split:
        err.write(b'split ' + top_path + b' into %d subtrees for %d workers\n' % (len(tasks), min(workers, len(tasks))))
    queue_r, queue_w = os.pipe()
    os.write(queue_w, b''.join(struct.pack('<I', index) for index in range(len(tasks))))
    os.close(queue_w)
    out.flush()
    running = []
    for _ in range(min(workers, len(tasks))):
        result_r, result_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(result_r)
                # Each subtree's output goes back as soon as it is walked, so the caller reads while the walk goes on.
                with open(result_w, 'wb') as sent:
                    while True:
                        taken = os.read(queue_r, 4)
                        if not taken:
                            break
                        index = struct.unpack('<I', taken)[0]
                        printed = captured(walk, *tasks[index])
                        sent.write(struct.pack('<IQ', index, len(printed)) + printed)
                        sent.flush()
                os._exit(status)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(2)
        os.close(result_w)
        running.append((pid, result_r))
    os.close(queue_r)
    for fd, _ in tasks:
        os.close(fd)
    # Outputs arrive in the order the workers finish; each is printed once everything before it in the walk is.
    printed_by_task = {}
    pending = {result_r: bytearray() for _, result_r in running}
    next_part = next_task = 0
    while pending:
        ready, _, _ = select.select(list(pending), [], [])
        for result_r in ready:
            chunk = os.read(result_r, 1 << 17)
            if not chunk:
                os.close(result_r)
                del pending[result_r]
                continue
            buffer = pending[result_r]
            buffer += chunk
            while len(buffer) >= 12:
                index, size = struct.unpack_from('<IQ', buffer, 0)
                if len(buffer) < 12 + size:
                    break
                printed_by_task[index] = bytes(buffer[12:12 + size])
                del buffer[:12 + size]
        while next_part < len(parts):
            part = parts[next_part]
            if type(part) is tuple:
                if next_task not in printed_by_task:
                    break
                out.write(printed_by_task.pop(next_task))
                next_task += 1
            else:
                out.write(part)
            next_part += 1
    broken = False
    for pid, _ in running:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code == 1:
            status = 1
        elif code != 0:
            broken = True
    if broken or next_part != len(parts):
        raise RuntimeError('a worker of the attribute walk failed')

def find_links(top_fd, top_path):
    """symlinks_only: GNU find lists the links below an opened directory (a C walk, about a fifth of this script's own
    walk of a 100,000-file site), then each is read from its parent opened by descriptor, component by component with
    O_NOFOLLOW from top_fd: a name find printed through a directory swapped for a link cannot be reached. Closes top_fd."""
    prefix = b'' if top_path == b'.' else top_path + b'/'
    prunes = []
    for e in exclude:
        if prefix == b'' or e.startswith(prefix):
            rel = e[len(prefix):]
            # -path takes a pattern: the excluded path's own * ? [ ] \ are matched as themselves.
            prunes += [b'-o', b'-path', b'./' + b''.join(b'\\' + bytes((c,)) if c in b'*?[]\\' else bytes((c,)) for c in rel)]
    expression = ([b'('] + prunes[1:] + [b')', b'-prune', b'-o'] if prunes else []) + [b'-type', b'l', b'-print0']
    os.fchdir(top_fd)
    found = subprocess.run([b'find', b'.'] + expression, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in found.stderr.splitlines():
        warn(top_path, line.decode('utf-8', 'replace'))
    if found.returncode != 0 and not found.stderr:
        warn(top_path, 'find exited with status %d' % found.returncode)
    parent_rel, parent_fd = None, -1
    try:
        for listed in found.stdout.split(b'\0'):
            if not listed.startswith(b'./'):
                continue
            rel = listed[2:]
            head, _, name = rel.rpartition(b'/')
            child = prefix + rel
            if head != parent_rel:
                if parent_fd >= 0:
                    os.close(parent_fd)
                parent_rel, parent_fd = head, -1
                try:
                    fd = open_below(top_fd, head.split(b'/') if head else [])
                except OSError as e:
                    why = 'was replaced by something that is not a directory (a symlink?) while being read; skipped'
                    warn(prefix + head, why if e.errno in (errno.ELOOP, errno.ENOTDIR) else e.strerror)
                    continue
                parent_fd = fd
                os.fchdir(parent_fd)
            if parent_fd < 0:
                continue
            dump(child, name, False)
    finally:
        if parent_fd >= 0:
            os.close(parent_fd)
        os.close(top_fd)

walk_below = find_links if links_only else parallel_walk if workers > 1 else walk

root_fd = os.open(req['root'], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
for text in req['paths']:
    top = os.fsencode(text)
    if inside_exclude(top):
        continue
    if top == b'.':
        fd = os.dup(root_fd)
        dump_dir(top, fd)
        walk_below(fd, top)
        continue
    parts = top.split(b'/')
    parent = -1
    try:
        parent = open_below(root_fd, parts[:-1])
        info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        if (info.st_mode & 0o170000) == 0o040000:
            fd = os.open(parts[-1], DIR_FLAGS, dir_fd=parent)
            dump_dir(top, fd)
            walk_below(fd, top)
        elif not links_only or (info.st_mode & 0o170000) == 0o120000:
            dump(top, b'/proc/self/fd/%d/%s' % (parent, parts[-1]), False)
    except OSError as e:
        why = 'a component is not a directory (a symlink?)' if e.errno in (errno.ELOOP, errno.ENOTDIR) else e.strerror
        warn(top, why)
    finally:
        if parent >= 0:
            os.close(parent)
out.flush()
sys.exit(status)
`;
