/* vmrt_channel.h — a one-way zero-copy message channel between two vmspaces, built on
 * vmrt_loan and vmrt_transfer (runtime/vmrt.h, README "Sharing between address spaces").
 *
 * Each message takes the cheapest way across for its size, as bench/share_bench measured:
 *  - shorter than the copy threshold, or not whole pages at a page boundary: copied into a
 *    ring in the receiver's vmspace (one memcpy);
 *  - otherwise lent (vmrt_loan: the receiver reads the sender's frames; the sender's pages
 *    are copy-on-write while the receiver holds the message), or with VMRT_CHANNEL_GIVE
 *    moved (vmrt_transfer: the sender's buffer reads zeros afterwards).
 * The receiver gets a pointer into its own vmspace, valid until vmrt_channel_done.
 * Messages are received and done in the order sent.  One sender thread and one receiver
 * thread may use a channel at the same time (a mutex orders them); recv does not block.
 * Plain C API; all calls return 0 or -1 with errno. */
#ifndef VMRT_CHANNEL_H
#define VMRT_CHANNEL_H

#include <stddef.h>

#include "vmrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmrt_channel vmrt_channel;

/* How a message crossed. */
#define VMRT_CHANNEL_COPIED 0
#define VMRT_CHANNEL_LOANED 1
#define VMRT_CHANNEL_MOVED 2
/* send flag: the sender gives its pages up (transfer instead of loan). */
#define VMRT_CHANNEL_GIVE 1

typedef struct {
  void* data; /* in the receiver's vmspace */
  size_t len;
  int how;    /* VMRT_CHANNEL_COPIED / LOANED / MOVED */
} vmrt_msg;

/* A channel from `from` to `to` (NULL + errno: EINVAL null vmspace, ENOMEM). */
vmrt_channel* vmrt_channel_create(vmrt_vmspace* from, vmrt_vmspace* to);
/* Messages longer than this that are whole pages go by loan or transfer (default 64 MiB: the
 * crossover share_bench measured on this machine kind, none up to there, see the README;
 * 0: every whole-page message). */
void vmrt_channel_set_copy_max(vmrt_channel* ch, size_t bytes);
size_t vmrt_channel_copy_max(const vmrt_channel* ch);
/* Queue len bytes at buf (in the sender's vmspace for loans and transfers).  EINVAL: len 0;
 * EAGAIN: the queue or the copy ring is full (the receiver must catch up); the errno of
 * vmrt_loan / vmrt_transfer otherwise. */
int vmrt_channel_send(vmrt_channel* ch, void* buf, size_t len, int flags);
/* The oldest message not yet received.  EAGAIN: none. */
int vmrt_channel_recv(vmrt_channel* ch, vmrt_msg* msg);
/* The receiver is done with msg (the oldest received one): its view goes. */
int vmrt_channel_done(vmrt_channel* ch, const vmrt_msg* msg);
/* Undelivered and unfinished messages are dropped. */
void vmrt_channel_destroy(vmrt_channel* ch);

#ifdef __cplusplus
}
#endif

#endif
