/* SPDX-License-Identifier: MIT */
/*
 * Connection slab. One anonymous mapping holds the slots followed by the free-list links.
 * MAP_NORESERVE with lazy faulting means a slab sized for 10,000 connections costs RSS only
 * for the slots actually handed out, and fresh pages arrive zeroed, so a never-used slot
 * needs no memset. Freed slots are reused last-in first-out: the most recently used slot
 * is the one most likely still in cache.
 */
#include "mem/slab.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* FreeBSD 11+ dropped MAP_NORESERVE: overcommit is its default anyway. */
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

#define SLOT_ALIGN 64 /* cache line: two connections never share one */
#define NO_SLOT UINT32_MAX

static size_t round_up_to_line(size_t n)
{
    return (n + SLOT_ALIGN - 1) & ~(size_t)(SLOT_ALIGN - 1);
}

/* Bytes of the mapping: slots, then one uint32_t link per slot. 0 on overflow. */
static size_t mapping_size(size_t slot_size, uint32_t capacity)
{
    size_t per_slot_max = SIZE_MAX / capacity;
    if (per_slot_max < sizeof(uint32_t) || slot_size > per_slot_max - sizeof(uint32_t))
        return 0;
    return slot_size * capacity + sizeof(uint32_t) * (size_t)capacity;
}

int chopin__slab_init(struct chopin__slab *s, size_t slot_size, uint32_t capacity)
{
    memset(s, 0, sizeof *s);
    s->free_head = NO_SLOT;
    if (slot_size == 0 || capacity == 0)
        return -EINVAL;
    if (slot_size > SIZE_MAX - SLOT_ALIGN)
        return -ENOMEM;
    size_t rounded = round_up_to_line(slot_size);
    size_t total = mapping_size(rounded, capacity);
    if (total == 0)
        return -ENOMEM;
    void *base = mmap(NULL, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -ENOMEM;
    s->base = base;
    s->slot_size = rounded;
    s->capacity = capacity;
    /* The links start right after the last slot: a multiple of 64, so aligned. */
    s->next_free = (uint32_t *)(s->base + rounded * capacity);
    return 0;
}

void chopin__slab_destroy(struct chopin__slab *s)
{
    if (s->base != NULL)
        munmap(s->base, mapping_size(s->slot_size, s->capacity));
    memset(s, 0, sizeof *s);
    s->free_head = NO_SLOT;
}

void *chopin__slab_take(struct chopin__slab *s)
{
    uint32_t index;
    if (s->free_head != NO_SLOT) {
        index = s->free_head;
        s->free_head = s->next_free[index];
        memset(chopin__slab_at(s, index), 0, s->slot_size);
    } else if (s->never_used < s->capacity) {
        index = s->never_used++; /* still zero from the kernel */
    } else {
        return NULL;
    }
    s->used++;
    return chopin__slab_at(s, index);
}

void chopin__slab_give(struct chopin__slab *s, void *slot)
{
    if (slot == NULL)
        return;
    uint32_t index = chopin__slab_index(s, slot);
    s->next_free[index] = s->free_head;
    s->free_head = index;
    s->used--;
}

uint32_t chopin__slab_index(const struct chopin__slab *s, const void *slot)
{
    return (uint32_t)((size_t)((const char *)slot - s->base) / s->slot_size);
}

void *chopin__slab_at(const struct chopin__slab *s, uint32_t index)
{
    return s->base + (size_t)index * s->slot_size;
}
