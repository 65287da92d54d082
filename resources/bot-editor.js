/*
 * Editor-side checks shared by the nodes' dialogs (each node's .html loads this file from
 * `resources/@blockchain-of-things/node-red/bot-editor.js`). They follow the runtime's rules
 * (lib/format/identity.ts, lib/format/note.ts, lib/format/topic.ts, nodes/settings.ts, nodes/red.ts); each check
 * returns null or the reason. Node-RED 4 marks an invalid field with a red border and shows the
 * reason only in a tooltip on hover; in this package's dialogs (bot-* nodes) the reason is also
 * written in a small red line under the field (showReasons), kept up to date as it is checked.
 */
(function (root) {
    'use strict';
    var B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
    var KEY_NAME;
    try { KEY_NAME = new RegExp('^[^\\p{White_Space}+\\x00-\\x1F]+$', 'u'); } catch (e) { KEY_NAME = /^[^\s+\x00-\x1F]+$/; }

    /** A did:key's problem (lib/format/identity.ts PublicKey.fromDid, without the curve point check), or null. */
    function didKeyError(did) {
        did = String(did);
        if (did.indexOf('did:key:z') !== 0 || did.length > 80) { return '"' + did.slice(0, 40) + '" is not an Ed25519 did:key (did:key:z6Mk…)'; }
        var s = did.slice(9), bytes = [], i, j, c;
        for (i = 0; i < s.length; i++) {
            c = B58.indexOf(s.charAt(i));
            if (c < 0) { return 'did:key is not valid base58btc'; }
            for (j = 0; j < bytes.length; j++) { c += bytes[j] * 58; bytes[j] = c & 0xff; c >>= 8; }
            while (c > 0) { bytes.push(c & 0xff); c >>= 8; }
        }
        for (i = 0; i < s.length && s.charAt(i) === '1'; i++) { bytes.push(0); }
        bytes.reverse();
        if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) { return 'did:key is not an Ed25519 key (multicodec 0xed01, 32 bytes)'; }
        return null;
    }

    /** A C2SP key name's problem (lib/format/note.ts isValidKeyName; origins also at most 255 characters), or null. */
    function keyNameError(name, what) {
        if (!KEY_NAME.test(String(name)) || String(name).length > 255) {
            return what + ' must be 1-255 characters without spaces or "+" (a C2SP key name, e.g. example.com/plant-1)';
        }
        return null;
    }

    /** An MQTT topic filter's problem (MQTT 3.1.1 §4.7, lib/format/topic.ts checkTopicFilter), or null. */
    function topicFilterError(t) {
        t = String(t);
        var levels = t.split('/');
        var ok = t.length > 0 && t.length <= 4096 && levels.every(function (l, i) {
            return (l.indexOf('#') < 0 || (l === '#' && i === levels.length - 1)) && (l.indexOf('+') < 0 || l === '+');
        });
        return ok ? null : 'an MQTT topic filter: "+" is a whole level, "#" only the last level, e.g. plant/+/temp';
    }

    /** A whole-number setting's problem (nodes/red.ts intSetting, then the node's range), or null; empty is the default. */
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

    /** A validator of a config-node field that is needed only while `when(current value of field)` holds. */
    function neededWhen(field, fallback, when, reason) {
        return function (v, opt) {
            if (!when(current(this, field, fallback))) { return true; }
            return (v !== undefined && v !== '' && v !== '_ADD_') || (opt ? reason : false);
        };
    }

    /** "<origin> <did:key>" lines (Witnessed, Mirrored): nodes/settings.ts parseWitnessed. */
    function originDidLinesError(v) {
        var seen = {}, lines = settingLines(v), i, parts, origin, did, err;
        for (i = 0; i < lines.length; i++) {
            parts = lines[i].text.split(/\s+/);
            if (parts.length !== 2) { return 'line ' + lines[i].n + ' must be "<origin> <did:key>", e.g. example.com/partner-b did:key:z6Mk…'; }
            origin = parts[0]; did = parts[1];
            if (origin.indexOf('did:key:') === 0 && did.indexOf('did:key:') !== 0) { origin = parts[1]; did = parts[0]; }
            err = keyNameError(origin, 'line ' + lines[i].n + ': the origin');
            if (err) { return err; }
            err = didKeyError(did);
            if (err) { return 'line ' + lines[i].n + ': ' + err; }
            if (seen[origin]) { return 'line ' + lines[i].n + ': ledger ' + origin + ' is listed twice'; }
            seen[origin] = true;
        }
        return null;
    }

    /**
     * Witness lines "<did:key> [name]" (nodes/settings.ts parseWitnesses, lib/consortium/quorum.ts): their
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
            if (parts.length > 2) { return 'line ' + lines[i].n + ' must be "<did:key> [name]", e.g. did:key:z6Mk… example.com/partner-b'; }
            err = didKeyError(parts[0]);
            if (err) { return 'line ' + lines[i].n + ': ' + err; }
            name = parts[1] !== undefined ? parts[1] : byDid[parts[0]];
            if (name === undefined) { return 'line ' + lines[i].n + ': the witness needs its key name (its ledger origin): "<did:key> <name>", or list its ledger under Witnessed'; }
            err = keyNameError(name, 'line ' + lines[i].n + ': the witness name');
            if (err) { return err; }
            if (names[name]) { return 'line ' + lines[i].n + ': witness ' + name + ' is listed twice'; }
            if (dids[parts[0]]) { return 'line ' + lines[i].n + ': this did:key is already a witness (each witness needs its own key)'; }
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
        if (def.required && value === '') { return label + ' is required'; }
        if (typeof def.validate === 'function') {
            try {
                var r = def.validate.call(node, value, { label: label });
                if (typeof r === 'string') { return r; }
                if (Array.isArray(r)) { return r.join('; '); }
            } catch (e) { /* as Node-RED: marked, no reason */ }
        }
        if (def.type && (value === '' || value === '_ADD_' || value === null)) { return 'choose a ' + def.type; }
        return label + ' is not valid';
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
