/*
 * Editor-side checks shared by the nodes' dialogs (each node's .html loads this file from
 * `resources/@blockchain-of-things/node-red/bot-editor.js`). They follow the runtime's rules
 * (lib/format/identity.ts, lib/format/note.ts, lib/format/topic.ts, nodes/setting-lines.ts, nodes/config-nodes.ts); each check
 * returns null or the reason. Node-RED 4 marks an invalid field with a red border and shows the
 * reason only in a tooltip on hover; in this package's dialogs (bot-* nodes) the reason is also
 * written in a small red line under the field (showReasons), kept up to date as it is checked.
 * The reasons are texts of the message catalogs ("bot-editor" in nodes/locales/<lang>/bot-ledger.json).
 */
(function (root) {
    'use strict';
    var B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

    /** A shared editor text (the "bot-editor" part of nodes/locales/<lang>/bot-ledger.json). */
    function t(key, opts) { return RED._('@blockchain-of-things/node-red/bot-ledger:bot-editor.' + key, opts); }
    var KEY_NAME;
    try { KEY_NAME = new RegExp('^[^\\p{White_Space}+\\x00-\\x1F]+$', 'u'); } catch (e) { KEY_NAME = /^[^\s+\x00-\x1F]+$/; }

    /** A did:key's problem (lib/format/identity.ts PublicKey.fromDid, without the curve point check), or null. */
    function didKeyError(did) {
        did = String(did);
        if (did.indexOf('did:key:z') !== 0 || did.length > 80) { return t('notDidKey', { did: did.slice(0, 40) }); }
        var s = did.slice(9), bytes = [], i, j, c;
        for (i = 0; i < s.length; i++) {
            c = B58.indexOf(s.charAt(i));
            if (c < 0) { return t('notBase58'); }
            for (j = 0; j < bytes.length; j++) { c += bytes[j] * 58; bytes[j] = c & 0xff; c >>= 8; }
            while (c > 0) { bytes.push(c & 0xff); c >>= 8; }
        }
        for (i = 0; i < s.length && s.charAt(i) === '1'; i++) { bytes.push(0); }
        bytes.reverse();
        if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) { return t('notEd25519'); }
        return null;
    }

    /** A C2SP key name's problem (lib/format/note.ts isValidKeyName; origins also at most 255 characters), or null. */
    function keyNameError(name, what) {
        if (!KEY_NAME.test(String(name)) || String(name).length > 255) {
            return t('keyName', { what: what });
        }
        return null;
    }

    /** An MQTT topic filter's problem (MQTT 3.1.1 §4.7, lib/format/topic.ts checkTopicFilter), or null. */
    function topicFilterError(filter) {
        var f = String(filter);
        var levels = f.split('/');
        var ok = f.length > 0 && f.length <= 4096 && levels.every(function (l, i) {
            return (l.indexOf('#') < 0 || (l === '#' && i === levels.length - 1)) && (l.indexOf('+') < 0 || l === '+');
        });
        return ok ? null : t('topicFilter');
    }

    /** A whole-number setting's problem (nodes/config-nodes.ts intSetting, then the node's range), or null; empty is the default. */
    function intError(v, min, max, reason) {
        if (v === undefined || v === null || v === '') { return null; }
        var n = typeof v === 'number' ? v : Number(String(v).trim());
        return Number.isSafeInteger(n) && n >= min && n <= max ? null : reason;
    }

    /** A Node-RED 3+/4 validator (reason shown in the editor) from a check returning null or a reason. */
    function validator(check) {
        return function (v, opt) {
            var reason = check.call(this, v);
            return reason === null ? true : (opt ? reason : false);
        };
    }

    /** The non-empty, non-comment lines of a textarea setting, with their line numbers. */
    function settingLines(v) {
        var out = [];
        String(v || '').split(/\r?\n/).forEach(function (line, i) {
            line = line.trim();
            if (line !== '' && line.charAt(0) !== '#') { out.push({ n: i + 1, text: line }); }
        });
        return out;
    }

    /**
     * A setting as the open dialog shows it, else the node's (or the fallback for a flow saved
     * before the option): validators of one field that depend on another (a mode, a type).
     */
    function current(node, field, fallback) {
        var $f = $('#node-input-' + field);
        if (!$f.length) { $f = $('#node-config-input-' + field); }
        return ($f.length && $f.val()) || node[field] || fallback;
    }

    /**
     * A validator of a config-node field that is needed only while `when(current value of field)` holds;
     * `reason` is the text or a function giving it (translated when asked).
     */
    function neededWhen(field, fallback, when, reason) {
        return function (v, opt) {
            if (!when(current(this, field, fallback))) { return true; }
            return (v !== undefined && v !== '' && v !== '_ADD_') || (opt ? (typeof reason === 'function' ? reason() : reason) : false);
        };
    }

    /** "<origin> <did:key>" lines (Witnessed, Mirrored): nodes/setting-lines.ts parseWitnessed. */
    function originDidLinesError(v) {
        var seen = {}, lines = settingLines(v), i, parts, origin, did, err;
        for (i = 0; i < lines.length; i++) {
            parts = lines[i].text.split(/\s+/);
            if (parts.length !== 2) { return t('originDidLine', { n: lines[i].n }); }
            origin = parts[0]; did = parts[1];
            if (origin.indexOf('did:key:') === 0 && did.indexOf('did:key:') !== 0) { origin = parts[1]; did = parts[0]; }
            err = keyNameError(origin, t('lineOrigin', { n: lines[i].n }));
            if (err) { return err; }
            err = didKeyError(did);
            if (err) { return t('line', { n: lines[i].n, reason: err }); }
            if (seen[origin]) { return t('ledgerTwice', { n: lines[i].n, origin: origin }); }
            seen[origin] = true;
        }
        return null;
    }

    /**
     * Witness lines "<did:key> [name]" (nodes/setting-lines.ts parseWitnesses, lib/consortium/quorum.ts): their
     * problem or null. Without a name, the origin of the `witnessed` line with that did:key is taken.
     */
    function witnessesError(v, witnessed) {
        var lines = settingLines(v), byDid = {}, names = {}, dids = {}, i, parts, err, name;
        settingLines(witnessed).forEach(function (l) {
            var p = l.text.split(/\s+/);
            if (p.length === 2) {
                if (p[0].indexOf('did:key:') === 0) { byDid[p[0]] = p[1]; } else { byDid[p[1]] = p[0]; }
            }
        });
        for (i = 0; i < lines.length; i++) {
            parts = lines[i].text.split(/\s+/);
            if (parts.length > 2) { return t('witnessLine', { n: lines[i].n }); }
            err = didKeyError(parts[0]);
            if (err) { return t('line', { n: lines[i].n, reason: err }); }
            name = parts[1] !== undefined ? parts[1] : byDid[parts[0]];
            if (name === undefined) { return t('witnessNoName', { n: lines[i].n }); }
            err = keyNameError(name, t('lineWitnessName', { n: lines[i].n }));
            if (err) { return err; }
            if (names[name]) { return t('witnessTwice', { n: lines[i].n, name: name }); }
            if (dids[parts[0]]) { return t('witnessSameKey', { n: lines[i].n }); }
            names[name] = true;
            dids[parts[0]] = true;
        }
        return null;
    }

    // ------------------------------------------------------------------ reasons under the fields

    /** The node of the open dialog with these field ids: a config node's (node-config-input-…) or a flow node's (node-input-…). */
    function editedNode(config) {
        var stack = (root.RED && RED.editor && RED.editor.getEditStack) ? RED.editor.getEditStack() : [];
        for (var i = stack.length - 1; i >= 0; i--) {
            var n = stack[i];
            if (n && n._def && (n._def.category === 'config') === config) { return n; }
        }
        return null;
    }

    /** Why Node-RED marks this field, as its validateNodeProperty decides (required, then the validator's reason). */
    function reasonOf(node, name, def, $f) {
        var value = $f.attr('type') === 'checkbox' ? $f.prop('checked') : $f.val();
        var label = typeof def.label === 'string' ? def.label : name;
        if (def.required && value === '') { return t('required', { label: label }); }
        if (typeof def.validate === 'function') {
            try {
                var r = def.validate.call(node, value, { label: label });
                if (typeof r === 'string') { return r; }
                if (Array.isArray(r)) { return r.join('; '); }
            } catch (e) { /* as Node-RED: marked, no reason */ }
        }
        if (def.type && (value === '' || value === '_ADD_' || value === null)) { return t('chooseType', { type: def.type }); }
        return t('notValid', { label: label });
    }

    /** Write (or remove) the reason line of every marked field of the open bot-* dialogs. */
    function refreshReasons() {
        ['node-input', 'node-config-input'].forEach(function (prefix) {
            var node = editedNode(prefix === 'node-config-input');
            var ours = !!(node && typeof node.type === 'string' && node.type.indexOf('bot-') === 0);
            $('.bot-reason[data-prefix="' + prefix + '"]').each(function () {
                var $f = $('#' + prefix + '-' + $(this).attr('data-for'));
                if (!ours || !$f.length || !$f.hasClass('input-error')) { $(this).remove(); }
            });
            if (!ours) { return; }
            [node._def.defaults || {}, node._def.credentials || {}].forEach(function (defs) {
                Object.keys(defs).forEach(function (name) {
                    var $f = $('#' + prefix + '-' + name);
                    if (!$f.length || !$f.hasClass('input-error')) { return; }
                    var $row = $f.closest('.form-row');
                    if (!$row.length) { return; }
                    var $line = $row.children('.bot-reason[data-for="' + name + '"]');
                    if (!$line.length) {
                        $line = $('<div class="bot-reason" role="alert">').attr({ 'data-for': name, 'data-prefix': prefix }).appendTo($row);
                    }
                    $line.text(reasonOf(node, name, defs[name], $f));
                });
            });
        });
    }

    /**
     * Show validation reasons under the fields of this package's dialogs (once per editor): a
     * field's red border comes and goes with Node-RED's validation (a class change, watched in
     * the editor's tray stack) and the reason changes as the user types (input events).
     */
    function showReasons() {
        if (root.__botReasons || !root.RED || !root.$) { return; }
        var stack = document.getElementById('red-ui-editor-stack');
        if (!stack || typeof MutationObserver === 'undefined') { return; }
        root.__botReasons = true;
        $('<style>').text('.bot-reason { color: var(--red-ui-text-color-error, #d6615f); font-size: 11px; line-height: 1.3; margin: 3px 0 0 104px; white-space: normal; }').appendTo('head');
        var pending = false;
        var schedule = function () {
            if (pending) { return; }
            pending = true;
            setTimeout(function () { pending = false; refreshReasons(); }, 0);
        };
        new MutationObserver(function (records) {
            for (var i = 0; i < records.length; i++) {
                var id = records[i].target && records[i].target.id;
                if (id && /^node-(config-)?input-/.test(id)) { schedule(); return; }
            }
        }).observe(stack, { attributes: true, attributeFilter: ['class'], subtree: true });
        $(stack).on('input change keyup paste', 'input, textarea, select', schedule);
        if (RED.events && RED.events.on) { RED.events.on('editor:close', schedule); }
    }

    root.BotEditor = {
        t: t,
        didKeyError: didKeyError,
        keyNameError: keyNameError,
        topicFilterError: topicFilterError,
        intError: intError,
        validator: validator,
        settingLines: settingLines,
        current: current,
        neededWhen: neededWhen,
        originDidLinesError: originDidLinesError,
        witnessesError: witnessesError,
        showReasons: showReasons
    };
    // Each node's .html loads this file: install once, now or when the first dialog opens.
    showReasons();
    if (!root.__botReasons && root.RED && RED.events && RED.events.on) { RED.events.on('editor:open', showReasons); }
})(window);
