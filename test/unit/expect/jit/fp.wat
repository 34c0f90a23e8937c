;; F/D: an inline fld, fadd.d and fmul.d inline, fmadd.d through the fast path, fdiv.d through fexec
;; 000: 00053087  fld f1, 0(a0)
;; 004: 0210f153  fadd.d f2, f1, f1 (dyn)
;; 008: 122081c3  fmadd.d f3, f1, f2, f2 (rne)
;; 00c: 1a21f253  fdiv.d f4, f3, f2
;; 010: 121202d3  fmul.d f5, f4, f1 (rne)
;; 014: 00008067  ret
(module
  (type (;0;) (func (param i32 i64 i32 i64 i32 i32 i64 i64 i32) (result i64)))
  (type (;1;) (func (param i64 i64) (result i64)))
  (type (;2;) (func (param i64 i32) (result i64)))
  (type (;3;) (func (param i64 i64 i32) (result i32)))
  (type (;4;) (func (param i32) (result i32)))
  (type (;5;) (func (param i64 i64 i64) (result i64)))
  (type (;6;) (func (param i32 i64) (result i32)))
  (type (;7;) (func (param i64 i64 i32 i32 i64) (result i32)))
  (import "env" "memory" (memory (;0;) 1 65536 shared))
  (import "hart" "load" (func (;0;) (type 2)))
  (import "hart" "store" (func (;1;) (type 3)))
  (import "hart" "fp" (func (;2;) (type 4)))
  (import "hart" "addD" (func (;3;) (type 1)))
  (import "hart" "mulD" (func (;4;) (type 1)))
  (import "hart" "fmaD" (func (;5;) (type 5)))
  (import "hart" "sys" (func (;6;) (type 6)))
  (func (;7;) (type 1) (param i64 i64) (result i64)
    (local i64 i64 i64)
    local.get 0
    i64.const 4294967295
    i64.and
    local.get 1
    i64.const 4294967295
    i64.and
    i64.mul
    local.set 2
    local.get 0
    i64.const 4294967295
    i64.and
    local.get 1
    i64.const 32
    i64.shr_u
    i64.mul
    local.set 3
    local.get 0
    i64.const 32
    i64.shr_u
    local.get 1
    i64.const 4294967295
    i64.and
    i64.mul
    local.set 4
    local.get 0
    i64.const 32
    i64.shr_u
    local.get 1
    i64.const 32
    i64.shr_u
    i64.mul
    local.get 3
    i64.const 32
    i64.shr_u
    i64.add
    local.get 4
    i64.const 32
    i64.shr_u
    i64.add
    local.get 2
    i64.const 32
    i64.shr_u
    local.get 3
    i64.const 4294967295
    i64.and
    i64.add
    local.get 4
    i64.const 4294967295
    i64.and
    i64.add
    i64.const 32
    i64.shr_u
    i64.add)
  (func (;8;) (type 7) (param i64 i64 i32 i32 i64) (result i32)
    (local i32 i32)
    block  ;; label = @1
      local.get 0
      i64.const 4095
      i64.and
      i64.const 4094
      i64.ge_u
      br_if 0 (;@1;)
      local.get 0
      local.get 1
      i64.sub
      i64.const 4096
      i64.lt_u
      if (result i32)  ;; label = @2
        local.get 0
        local.get 1
        i64.sub
        i32.wrap_i64
        local.get 2
        i32.add
      else
        local.get 3
        local.get 0
        i64.const 12
        i64.shr_u
        i32.wrap_i64
        i32.const 4095
        i32.and
        i32.const 4
        i32.shl
        i32.add
        local.tee 6
        i64.load align=1
        local.get 0
        i64.const -4096
        i64.and
        local.get 4
        i64.or
        i64.ne
        br_if 1 (;@1;)
        local.get 0
        local.get 6
        i64.load offset=8 align=1
        i64.add
        i32.wrap_i64
      end
      local.tee 5
      i32.const 1
      i32.shr_u
      local.get 5
      i32.const 19
      i32.shr_u
      i32.xor
      i32.const 262143
      i32.and
      i32.const 4
      i32.shl
      i32.const 4194304
      i32.add
      local.tee 6
      i32.load align=1
      local.get 5
      i32.ne
      br_if 0 (;@1;)
      local.get 6
      i32.load offset=4 align=1
      i32.const 3
      i32.eq
      br_if 0 (;@1;)
      local.get 6
      return
    end
    i32.const 0)
  (func (;9;) (type 0) (param i32 i64 i32 i64 i32 i32 i64 i64 i32) (result i64)
    (local i64 i64 i64 i32 i32 i32 i64 i64 f64 f64 f64)
    local.get 0
    i64.load offset=8 align=1
    local.set 15
    local.get 0
    i64.load offset=80 align=1
    local.set 16
    block  ;; label = @1
      loop  ;; label = @2
        block  ;; label = @3
          local.get 2
          br_table 0 (;@3;) 0 (;@3;)
        end
        local.get 0
        i64.load offset=536 align=1
        i64.const 24576
        i64.and
        i64.eqz
        if  ;; label = @3
          local.get 1
          local.set 9
          br 2 (;@1;)
        end
        local.get 16
        local.set 10
        local.get 4
        local.get 10
        i64.const 12
        i64.shr_u
        i32.wrap_i64
        i32.const 4095
        i32.and
        i32.const 4
        i32.shl
        i32.add
        local.tee 12
        i64.load align=1
        local.get 10
        i64.const -4089
        i64.and
        local.get 6
        i64.or
        i64.eq
        if (result i64)  ;; label = @3
          local.get 10
          local.get 12
          i64.load offset=8 align=1
          i64.add
          i32.wrap_i64
          i64.load align=1
        else
          local.get 10
          i32.const 8
          call 0
          local.get 0
          i64.load offset=992 align=1
          i64.eqz
          i32.eqz
          if  ;; label = @4
            local.get 0
            i64.const 0
            i64.store offset=992 align=1
            local.get 1
            local.set 9
            br 3 (;@1;)
          end
        end
        local.set 11
        local.get 0
        local.get 11
        i64.store offset=264 align=1
        local.get 0
        local.get 0
        i64.load offset=536 align=1
        i64.const -9223372036854751232
        i64.or
        i64.store offset=536 align=1
        block  ;; label = @3
          block  ;; label = @4
            local.get 0
            i64.load offset=528 align=1
            i64.const 224
            i64.and
            i64.eqz
            i32.eqz
            br_if 0 (;@4;)
            local.get 0
            i64.load offset=264 align=1
            f64.reinterpret_i64
            local.set 17
            local.get 0
            i64.load offset=264 align=1
            f64.reinterpret_i64
            local.set 18
            local.get 17
            local.get 18
            f64.add
            local.tee 19
            local.get 19
            f64.sub
            f64.const 0x0p+0 (;=0;)
            f64.ne
            br_if 0 (;@4;)
            local.get 19
            local.get 17
            f64.sub
            local.get 18
            f64.ne
            local.get 19
            local.get 18
            f64.sub
            local.get 17
            f64.ne
            i32.or
            if  ;; label = @5
              local.get 0
              local.get 0
              i64.load offset=528 align=1
              i64.const 1
              i64.or
              i64.store offset=528 align=1
            end
            local.get 0
            local.get 19
            i64.reinterpret_f64
            i64.store offset=272 align=1
            br 1 (;@3;)
          end
          i32.const 34664787
          call 2
          if  ;; label = @4
            local.get 7
            i64.const 1
            i64.add
            local.set 7
            local.get 1
            i64.const 4
            i64.add
            local.set 9
            br 3 (;@1;)
          end
        end
        block  ;; label = @3
          block  ;; label = @4
            local.get 0
            i64.load offset=264 align=1
            local.get 0
            i64.load offset=272 align=1
            local.get 0
            i64.load offset=272 align=1
            call 5
            local.tee 11
            i64.const 9218868437227405313
            i64.eq
            br_if 0 (;@4;)
            local.get 0
            local.get 11
            i64.store offset=280 align=1
            br 1 (;@3;)
          end
          i32.const 304120259
          call 2
          if  ;; label = @4
            local.get 7
            i64.const 2
            i64.add
            local.set 7
            local.get 1
            i64.const 8
            i64.add
            local.set 9
            br 3 (;@1;)
          end
        end
        i32.const 438432339
        call 2
        if  ;; label = @3
          local.get 7
          i64.const 3
          i64.add
          local.set 7
          local.get 1
          i64.const 12
          i64.add
          local.set 9
          br 2 (;@1;)
        end
        block  ;; label = @3
          block  ;; label = @4
            local.get 0
            i64.load offset=288 align=1
            local.tee 11
            f64.reinterpret_i64
            local.set 17
            local.get 0
            i64.load offset=264 align=1
            local.tee 10
            f64.reinterpret_i64
            local.set 18
            local.get 17
            local.get 18
            f64.mul
            local.tee 19
            f64.abs
            f64.const 0x1p-1022 (;=2.22507e-308;)
            f64.gt
            local.get 19
            f64.abs
            f64.const inf (;=inf;)
            f64.lt
            i32.and
            i32.eqz
            br_if 0 (;@4;)
            local.get 11
            i64.const 4503599627370495
            i64.and
            i64.const 4503599627370496
            i64.const 0
            local.get 11
            i64.const 9218868437227405312
            i64.and
            i64.eqz
            i32.eqz
            select
            i64.or
            local.tee 11
            local.get 11
            i64.ctz
            i64.shr_u
            local.set 11
            local.get 10
            i64.const 4503599627370495
            i64.and
            i64.const 4503599627370496
            i64.const 0
            local.get 10
            i64.const 9218868437227405312
            i64.and
            i64.eqz
            i32.eqz
            select
            i64.or
            local.tee 10
            local.get 10
            i64.ctz
            i64.shr_u
            local.set 10
            i64.const 128
            local.get 11
            i64.clz
            i64.sub
            local.get 10
            i64.clz
            i64.sub
            i32.wrap_i64
            local.set 13
            local.get 13
            i32.const 54
            i32.gt_s
            local.get 13
            i32.const 54
            i32.eq
            local.get 11
            local.get 10
            i64.mul
            i64.const 9007199254740992
            i64.ge_u
            i32.and
            i32.or
            if  ;; label = @5
              local.get 0
              local.get 0
              i64.load offset=528 align=1
              i64.const 1
              i64.or
              i64.store offset=528 align=1
            end
            local.get 0
            local.get 19
            i64.reinterpret_f64
            i64.store offset=296 align=1
            br 1 (;@3;)
          end
          i32.const 303170259
          call 2
          if  ;; label = @4
            local.get 7
            i64.const 4
            i64.add
            local.set 7
            local.get 1
            i64.const 16
            i64.add
            local.set 9
            br 3 (;@1;)
          end
        end
        local.get 15
        i64.const 0
        i64.add
        i64.const -2
        i64.and
        local.set 9
        local.get 7
        i64.const 6
        i64.add
        local.set 7
        i32.const 1
        local.set 14
        br 1 (;@1;)
      end
    end
    local.get 0
    local.get 9
    i64.store offset=512 align=1
    local.get 14
    local.get 7
    local.get 3
    i64.lt_s
    i32.and
    if  ;; label = @1
      local.get 0
      local.get 9
      local.get 1
      i32.const -2145386496
      local.get 8
      local.get 6
      call 8
      i32.store offset=1024 align=1
    end
    local.get 7)
  (export "f0" (func 9)))
