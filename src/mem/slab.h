/* SPDX-License-Identifier: MIT */
/*
 * Fixed-capacity slab of equal-size slots with an O(1) LIFO free list (hot slots are
 * reused first). Memory is reserved at init and touched lazily by the kernel.
 */
#ifndef CHOPIN_MEM_SLAB_H
#define CHOPIN_MEM_SLAB_H

#include <stddef.h>
#include <stdint.h>

struct chopin__slab {
    char *base;
    size_t slot_size; /* rounded up to 64 (cache-line aligned slots) */
    uint32_t capacity;
    uint32_t used;
    uint32_t free_head;  /* index of the first free slot, or UINT32_MAX */
    uint32_t never_used; /* slots [never_used, capacity) have never been handed out */
    uint32_t *next_free; /* per-slot free-list links */
};

/** 0, -EINVAL (capacity 0 or slot_size 0), or -ENOMEM (mmap failed or the size overflows).
 *  On error the slab is left empty and destroy is still safe. */
int chopin__slab_init(struct chopin__slab *s, size_t slot_size, uint32_t capacity);
void chopin__slab_destroy(struct chopin__slab *s);
/** A zeroed slot, or NULL when all `capacity` slots are in use. */
void *chopin__slab_take(struct chopin__slab *s);
/** Returns a slot taken from this slab (NULL is ignored). The slot keeps its bytes until it
 *  is taken again. */
void chopin__slab_give(struct chopin__slab *s, void *slot);
/** Index of a slot (0..capacity-1) and back. */
uint32_t chopin__slab_index(const struct chopin__slab *s, const void *slot);
void *chopin__slab_at(const struct chopin__slab *s, uint32_t index);

#endif
